"""The historian writer: a durable wait commits at once; the flush adapts to load; a
redelivered sample is stored once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from genba.bus import Bus
from genba.historian import HistorianWriter, StoreSettings, TimeRange
from genba.historian._records import RecordLog
from genba.historian.duckdb import DuckDBStore
from genba.tags import TagRegistry
from genba.types import Event, SampleBatch, TagSpec


def _writer(tmp_path: Path, flush_ms: int) -> tuple[Bus, DuckDBStore, HistorianWriter]:
    reg = TagRegistry()
    reg.ensure([TagSpec("s/a/l/m/x"), TagSpec("s/a/l/m/y")])
    bus = Bus(reg)
    store = DuckDBStore(tmp_path / "h.duckdb")
    settings = StoreSettings(flush_interval_ms=flush_ms)
    return bus, store, HistorianWriter(bus, store, settings)


def _batch(tags: list[int], seconds: list[int], values: list[float]) -> SampleBatch:
    return SampleBatch.from_columns(
        tag_ids=np.array(tags), ts_ns=np.array(seconds) * 10**9, values=np.array(values)
    )


async def test_a_durable_wait_is_one_commit_not_a_flush_interval(tmp_path: Path) -> None:
    bus, store, writer = _writer(tmp_path, flush_ms=5_000)
    task = asyncio.create_task(writer.run())
    t0 = time.monotonic()
    async with writer.durable():
        await bus.publish(_batch([1], [1], [1.0]))
        await asyncio.wait_for(writer.wait_durable(bus.stats().published_samples), 2)
    waited = time.monotonic() - t0
    assert store.count() == 1
    assert waited < 1.0, f"waited {waited:.2f} s: the 5 s flush interval, not a commit"
    bus.close()
    await asyncio.wait_for(task, 10)
    store.close()


async def test_a_trickle_is_written_in_milliseconds_a_flood_in_large_batches(
    tmp_path: Path,
) -> None:
    """The flush adapts to load: with a 5 s interval, one lone sample is still queryable at
    once (the writer waits about as long as its last write took), while 2,000 batches put on
    the bus as fast as possible are written in far fewer commits."""
    bus, store, writer = _writer(tmp_path, flush_ms=5_000)
    task = asyncio.create_task(writer.run())
    await bus.publish(_batch([1], [1], [1.0]))
    t0 = time.monotonic()
    while store.count() < 1 and time.monotonic() - t0 < 5:  # noqa: ASYNC110 - a store poll
        await asyncio.sleep(0.005)
    assert time.monotonic() - t0 < 0.5, "a lone sample waited for the flush interval"
    before = writer.stats.flushes
    for i in range(2_000):
        await bus.publish(_batch([1, 2], [10 + i, 10 + i], [float(i), float(i)]))
    bus.close()
    await asyncio.wait_for(task, 10)
    assert store.count() == 1 + 4_000
    assert writer.stats.flushes - before < 200, writer.stats.flushes - before
    store.close()


def test_the_wait_for_more_is_the_last_write_bounded_by_the_interval(tmp_path: Path) -> None:
    _, store, writer = _writer(tmp_path, flush_ms=250)
    writer.stats.last_flush_ms = 0.2
    assert writer._coalesce_s() == 0.005  # never less: a commit costs about a millisecond
    writer.stats.last_flush_ms = 40.0
    assert writer._coalesce_s() == 0.04
    writer.stats.last_flush_ms = 9_000.0  # a slow disk: the interval still bounds the wait
    assert writer._coalesce_s() == 0.25
    store.close()


async def test_a_redelivered_sample_is_stored_once_a_corrected_one_is_kept(
    tmp_path: Path,
) -> None:
    bus, store, writer = _writer(tmp_path, flush_ms=10)
    task = asyncio.create_task(writer.run())
    await bus.publish(_batch([1, 1, 1, 2], [10, 20, 30, 30], [1.0, 2.0, 3.0, 9.0]))
    await asyncio.sleep(0.2)
    # A broker resends the last two samples of tag 1 (stored, not acknowledged before a
    # crash) after the next live one; tag 2 gets a late sample never stored, and a sample at
    # a stored time with another value (a correction: kept).
    await bus.publish(_batch([1, 1, 1, 1, 2, 2], [40, 20, 30, 50, 25, 30], [4, 2, 3, 5, 8, 9.5]))
    bus.close()
    await asyncio.wait_for(task, 10)
    assert writer.stats.duplicates_dropped == 2
    got = store.raw([1, 2], TimeRange(0, 100 * 10**9))
    seconds = (got.ts_ns // 10**9).tolist()
    pairs = sorted(zip(got.tag_ids.tolist(), seconds, got.values.tolist(), strict=True))
    assert pairs == [
        (1, 10, 1.0), (1, 20, 2.0), (1, 30, 3.0), (1, 40, 4.0), (1, 50, 5.0),
        (2, 25, 8.0), (2, 30, 9.0), (2, 30, 9.5),
    ]  # fmt: skip
    store.close()


async def test_redeliveries_are_recognised_after_a_restart(tmp_path: Path) -> None:
    bus, store, writer = _writer(tmp_path, flush_ms=10)
    task = asyncio.create_task(writer.run())
    await bus.publish(_batch([1, 1], [1, 2], [1.0, 2.0]))
    bus.close()
    await asyncio.wait_for(task, 10)
    store.close()
    bus, store, writer = _writer(
        tmp_path, flush_ms=10
    )  # the newest per tag read back from the store
    task = asyncio.create_task(writer.run())
    await bus.publish(_batch([1, 1, 1], [1, 2, 3], [1.0, 2.0, 3.0]))
    bus.close()
    await asyncio.wait_for(task, 10)
    assert writer.stats.duplicates_dropped == 2
    assert store.count() == 3
    store.close()


async def test_bus_events_are_kept_in_the_record_log_and_a_refusing_store_keeps_them(
    tmp_path: Path,
) -> None:
    reg = TagRegistry()
    reg.ensure([TagSpec("s/a/l/m/x")])
    bus = Bus(reg)
    store = DuckDBStore(tmp_path / "h.duckdb")
    records = RecordLog(store)
    writer = HistorianWriter(bus, store, StoreSettings(flush_interval_ms=20), records=records)
    tasks = [asyncio.create_task(writer.run()), asyncio.create_task(records.run())]
    await bus.publish(Event("spBv1.0/g/NDEATH/e1", 5 * 10**9, "stale", {"source": "spb"}))
    await bus.publish(_batch([1], [6], [1.0]))
    bus.close()
    await asyncio.wait_for(tasks[0], 10)
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)  # writes what is left, then ends
    (event,) = store.records("event")
    assert (event.key, event.ts_ns, event.body) == (
        "spBv1.0/g/NDEATH/e1", 5 * 10**9, {"kind": "stale", "data": {"source": "spb"}}
    )  # fmt: skip
    assert store.count() == 1
    store.close()


async def test_the_record_log_keeps_records_while_the_store_refuses_them(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb")
    records = RecordLog(store)
    store.close()  # every append fails from now on
    records.put("deadletter", "mqtt-0", {"reason": "x"}, 1)
    assert not await records.flush()
    assert records.health()["write_errors"] == 1
    assert records.pending == 1
    assert records.last_error
    records.store = DuckDBStore(tmp_path / "h.duckdb")  # the store answers again
    assert await records.flush()
    assert [r.body for r in records.store.records("deadletter")] == [{"reason": "x"}]
    assert (records.pending, records.last_error) == (0, "")
    records.store.close()


async def test_records_dropped_while_a_write_is_in_flight_never_take_a_newer_one(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb")
    records = RecordLog(store, max_pending=2)
    records.put("x", "a", {"n": 1}, 1)
    records.put("x", "b", {"n": 2}, 2)
    flushing = asyncio.ensure_future(records.flush())  # writes a, b in a thread
    await asyncio.sleep(0)
    records.put("x", "c", {"n": 3}, 3)  # the queue is full: a is dropped from it meanwhile
    assert await flushing
    assert [r.key for r in store.records("x")] == ["a", "b"]
    assert records.pending == 1  # c is still to be written, not taken off with a and b
    assert await records.flush()
    assert [r.key for r in store.records("x")] == ["a", "b", "c"]
    store.close()


def test_a_record_committed_while_still_queued_is_read_once(tmp_path: Path) -> None:
    # a write in flight commits before it takes its records off the queue: read() once
    # returned such a record twice (queued and stored; an alarm's history showed two
    # 'activated' when the API answered between the two steps)
    store = DuckDBStore(tmp_path / "h.duckdb")
    records = RecordLog(store)
    records.put("alarm.event", "press/temp", {"event": "activated", "value": 405.0}, ts_ns=7)
    (queued,) = records.read("alarm.event")
    store.append_records([queued])  # the write in flight has committed, not yet dequeued
    got = records.read("alarm.event")
    assert [(r.body["event"], r.seq) for r in got] == [("activated", 1)]
    store.close()

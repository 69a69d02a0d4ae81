"""Store-and-forward: the store goes away, batches wait on disk in order, nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from genba.bus import Bus
from genba.historian import HistorianWriter, StoreSettings, TimeRange
from genba.historian._spool import Spool
from genba.historian.duckdb import DuckDBStore
from genba.tags import TagRegistry
from genba.types import SampleBatch, TagSpec
from tests.conftest import wait_until


class UnreachableStore(DuckDBStore):
    """A real DuckDB store whose disk can be made unavailable (as a full or unmounted disk)."""

    down = False

    def append(self, batch: SampleBatch) -> None:
        if self.down:
            raise OSError(28, "No space left on device")
        super().append(batch)


def batch(i: int, n: int = 100) -> SampleBatch:
    k = np.arange(i * n, (i + 1) * n)
    return SampleBatch.from_columns(tag_ids=np.ones(n), ts_ns=k * 10**9, values=k.astype(float))


def setup(tmp_path: Path, spool_mb: int = 64) -> tuple[Bus, UnreachableStore, HistorianWriter]:
    reg = TagRegistry()
    reg.ensure([TagSpec("s/a/l/m/x")])
    bus = Bus(reg)
    store = UnreachableStore(tmp_path / "h.duckdb")
    settings = StoreSettings(flush_interval_ms=10, spool_max_mb=spool_mb)
    return bus, store, HistorianWriter(bus, store, settings, spool_dir=tmp_path / "spool")


async def test_outage_is_spooled_in_order_and_replayed(tmp_path: Path) -> None:
    bus, store, writer = setup(tmp_path)
    task = asyncio.create_task(writer.run())
    await bus.publish(batch(0))
    await wait_until(lambda: writer.stats.stored_samples == 100)
    store.down = True
    for i in range(1, 11):
        await asyncio.wait_for(bus.publish(batch(i)), 2)  # connectors are not held up
    await wait_until(lambda: writer.stats.spooled_samples == 1000)
    assert len(list((tmp_path / "spool").glob("*.arrow"))) >= 1
    assert writer.stats.errors >= 1
    store.down = False
    await wait_until(lambda: writer.stats.stored_samples == 1100, 10)
    await bus.publish(batch(11))  # new data after the replay
    await wait_until(lambda: writer.stats.stored_samples == 1200)
    bus.close()
    await task
    got = store.raw([1], TimeRange(0, 10**13))
    assert got.values.tolist() == [float(v) for v in range(1200)]  # all, once, in order
    assert list((tmp_path / "spool").glob("*.arrow")) == []
    store.close()


async def test_spool_left_by_a_stopped_node_is_replayed_at_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10**8)
    spool.put(batch(0))
    spool.put(batch(1))
    bus, store, writer = setup(tmp_path)
    task = asyncio.create_task(writer.run())
    await wait_until(lambda: writer.stats.stored_samples == 200)
    bus.close()
    await task
    assert store.count() == 200
    store.close()


async def test_full_spool_makes_connectors_wait_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus, store, writer = setup(tmp_path, spool_mb=1)
    store.down = True
    task = asyncio.create_task(writer.run())
    with caplog.at_level(logging.WARNING, logger="genba.historian"):
        big = batch(0, n=60_000)  # about 1.7 MB on disk
        await bus.publish(big)
        await wait_until(lambda: writer.stats.spooled_samples == 60_000)
        await bus.publish(batch(1, n=10))
        await wait_until(lambda: "spool is full" in caplog.text)
    assert writer.stats.spooled_samples == 60_000  # the second waits, it is not dropped
    store.down = False
    await wait_until(lambda: writer.stats.stored_samples == 60_010, 15)
    bus.close()
    await task
    store.close()

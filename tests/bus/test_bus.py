import asyncio
import logging

import pytest

from genba.bus import Bus, Overflow
from genba.errors import BusClosedError, PatternError
from genba.tags import TagRegistry
from genba.types import Event, SampleBatch, TagSpec


def _bus() -> tuple[Bus, list[int]]:
    reg = TagRegistry()
    tags = reg.ensure([TagSpec("s/a/l1/m1/t"), TagSpec("s/a/l1/m2/t"), TagSpec("s/a/l2/m1/t")])
    return Bus(reg), [t.id for t in tags]


def _batch(ids: list[int], n: int = 1) -> SampleBatch:
    return SampleBatch.from_columns(
        tag_ids=ids * n, ts_ns=list(range(len(ids) * n)), values=[float(i) for i in ids] * n
    )


async def test_each_subscriber_gets_only_matching_rows() -> None:
    bus, ids = _bus()
    everything = bus.subscribe("#", name="all")
    line1 = bus.subscribe("s/a/l1/#", name="l1")
    m1 = bus.subscribe("s/a/+/m1/t", name="m1")
    await bus.publish(_batch(ids))
    bus.close()
    got = {
        s.name: [b.tag_ids.tolist() async for b in s if isinstance(b, SampleBatch)]
        for s in (everything, line1, m1)
    }
    assert got == {"all": [ids], "l1": [ids[:2]], "m1": [[ids[0], ids[2]]]}


async def test_events_are_matched_on_their_topic() -> None:
    bus, _ = _bus()
    sub = bus.subscribe("s/a/l1/#", name="ev")
    await bus.publish(Event("s/a/l1/m1", 1, "state", {"state": "running"}))
    await bus.publish(Event("s/a/l2/m1", 1, "state", {"state": "down"}))
    bus.close()
    assert [e.topic async for e in sub] == ["s/a/l1/m1"]  # type: ignore[union-attr]


async def test_block_subscriber_holds_back_the_publisher() -> None:
    bus, ids = _bus()
    slow = bus.subscribe("#", name="historian", max_samples=6, overflow=Overflow.BLOCK)
    await bus.publish(_batch(ids, 2))  # 6 samples: full
    blocked = asyncio.create_task(bus.publish(_batch(ids)))
    await asyncio.sleep(0.05)
    assert not blocked.done(), "publish must wait while the BLOCK subscriber is full"
    assert slow.stats().queued_samples == 6
    first = await slow.drain()
    await asyncio.wait_for(blocked, 1)
    second = await slow.drain()
    assert sum(map(len, first + second)) == 9  # type: ignore[arg-type]
    assert slow.stats().dropped_samples == 0


async def test_drop_oldest_subscriber_counts_and_logs_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus, ids = _bus()
    live = bus.subscribe("#", name="live", max_samples=3, overflow=Overflow.DROP_OLDEST)
    with caplog.at_level(logging.WARNING, logger="genba.bus"):
        for _ in range(4):
            await bus.publish(_batch(ids))  # 3 samples each; the publisher never waits
    stats = live.stats()
    assert stats.dropped_samples == 9
    assert stats.queued_samples == 3
    assert "dropped the oldest" in caplog.text
    assert "'live'" in caplog.text
    kept = await live.drain()
    assert len(kept) == 1


async def test_close_lets_subscribers_drain_then_ends_iteration() -> None:
    bus, ids = _bus()
    sub = bus.subscribe("#", name="s")
    await bus.publish(_batch(ids))
    bus.close()
    assert sub.finished is False
    assert len(await sub.drain()) == 1
    assert sub.finished
    with pytest.raises(BusClosedError, match="shutting down"):
        await bus.publish(_batch(ids))


async def test_waiting_drain_wakes_up_on_close() -> None:
    bus, _ = _bus()
    sub = bus.subscribe("#", name="s")
    waiter = asyncio.create_task(sub.drain(timeout=5))
    await asyncio.sleep(0.01)
    bus.close()
    assert await asyncio.wait_for(waiter, 1) == []


async def test_drain_times_out_empty() -> None:
    bus, _ = _bus()
    sub = bus.subscribe("#", name="s")
    assert await sub.drain(timeout=0.01) == []


def test_bad_pattern_is_refused_at_subscribe() -> None:
    bus, _ = _bus()
    with pytest.raises(PatternError):
        bus.subscribe("s/#/x", name="bad")


async def test_stats_count_published_samples() -> None:
    bus, ids = _bus()
    bus.subscribe("#", name="s")
    await bus.publish(_batch(ids, 2))
    await bus.publish(Event("x", 0, "k"))
    st = bus.stats()
    assert (st.published_samples, st.published_batches, st.published_events) == (6, 1, 1)

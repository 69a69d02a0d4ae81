"""Stale marks: when nothing vouches for a tag's last value any more, the store says so.

A node that stops, a source silent past its heartbeat timeout, and a node that crashed all
leave a BAD sample with no value (a stale mark) on the tags concerned, so KPIs count the
time after it as unknown and screens show the tag stale (docs/kpi.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from genba.config import GenbaConfig
from genba.historian import TimeRange, open_store
from genba.node._node import RUNNING_SENTINEL
from genba.types import Quality, SampleBatch, TagSpec
from tests.conftest import Broker, RunningNode, demo_config_text, wait_until
from tests.connectors.test_mqtt import pub

NOW_MS = (time.time_ns() // 10**9 - 60) * 1000


def _last(config: GenbaConfig) -> SampleBatch:
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        return store.last()
    finally:
        store.close()


async def test_a_stopped_node_leaves_every_connector_tag_stale(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    config = make_config(demo_config_text(rate_hz=10))
    rn: RunningNode = await run_node(config)
    await wait_until(lambda: rn.node.writer.stats.stored_samples > 100)
    await rn.shutdown()
    assert not (config.data_dir / RUNNING_SENTINEL).exists()  # a clean stop
    last = _last(config)
    assert len(last) == len(rn.node.registry)
    assert (last.quality == Quality.BAD).all()  # every tag's newest sample is a stale mark
    assert np.isnan(last.values).all()


async def test_a_silent_source_goes_stale_after_its_heartbeat_timeout(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn: RunningNode = await run_node(make_config(f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "mqtt"
host = "{mqtt_broker.host}"
port = {mqtt_broker.port}
topics = ["plant/#"]
batch_ms = 20
stale_after_s = 1.0
"""))  # fmt: skip
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    await pub(mqtt_broker, "plant/hall/l1/press/force", f'{{"value": 12.5, "timestamp": {NOW_MS}}}')
    await wait_until(lambda: "plant/hall/l1/press/force" in rn.node.registry)
    await wait_until(lambda: rn.node.health()["connectors"][0]["stale_tags"] == 1, 5)
    heard = rn.node.health()["connectors"][0]["last_message_ms"]  # not moved by the mark
    await wait_until(lambda: bool(rn.node.store.last().quality[0] == Quality.BAD))
    last = (await rn.http.get("/api/tags/plant/hall/l1/press/force/last")).json()
    assert last["stale"] is True
    assert last["value"] is None
    assert heard + 1000 <= last["ts_ms"] <= heard + 1100  # when the timeout ran out
    # the next message makes it fresh again
    await pub(mqtt_broker, "plant/hall/l1/press/force", '{"value": 13.0}')
    await wait_until(lambda: rn.node.health()["connectors"][0]["stale_tags"] == 0)
    await wait_until(lambda: bool(rn.node.store.last().values[0] == 13))  # stored
    last = (await rn.http.get("/api/tags/plant/hall/l1/press/force/last")).json()
    assert (last["value"], last["stale"]) == (13, False)


async def test_after_a_crash_the_next_start_marks_what_nobody_vouched_for(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    config = make_config('[node]\nhttp = "127.0.0.1:0"\n')
    store = open_store(config.store, data_dir=config.data_dir)
    a, b = [t.id for t in _ensure(store, ["s/a/l/m/state", "s/a/l/m/speed"])]
    store.append(
        SampleBatch.from_columns(
            tag_ids=[a, b, b], ts_ns=[10**18, 10**18, 10**18 + 5 * 10**9], values=[1.0, 3.0, 4.0]
        )
    )
    store.close()
    (config.data_dir / RUNNING_SENTINEL).write_text("left by a node that was killed\n")
    rn: RunningNode = await run_node(config)
    await rn.shutdown()
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        got = store.raw([a, b], TimeRange(0, 2 * 10**18))
    finally:
        store.close()
    marks = got.quality == Quality.BAD
    assert got.tag_ids[marks].tolist() == [a, b]
    # just after the newest stored sample: the last moment anything was written
    assert (got.ts_ns[marks] == 10**18 + 5 * 10**9 + 1).all()


def _ensure(store: Any, paths: list[str]) -> list[Any]:
    from genba.tags import TagRegistry

    reg = TagRegistry(store.load_tags())
    tags = reg.ensure([TagSpec(p) for p in paths])
    store.save_tags(tags)
    return tags

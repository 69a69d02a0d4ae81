"""KPIs on report-by-exception data against the simulator's ground truth.

Real sources send a value only when it changes (OPC UA subscriptions, Sparkplug, most MQTT
gateways). The simulator's outputs do the same through :class:`ReportByException`; genba must
still land within 0.5 percentage points of the truth: a week written straight to a store, and
the plant sent through a real Mosquitto as Sparkplug B and through an asyncua OPC UA server
into a running node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba.clock import RealClock
from genba.config import GenbaConfig, example_config, parse_config
from genba.historian import Store, open_store
from genba.historian.duckdb import DuckDBStore
from genba.kpi import Kpi
from genba.sim import GroundTruth, Simulator, load_scenario, truth
from genba.sim.outputs import OpcUaOutput, ReportByException, SparkplugOutput
from genba.tags import TagRegistry
from genba.testing import free_port
from genba.types import SampleBatch
from tests.conftest import Broker, RunningNode, wait_until
from tests.kpi.conftest import JsonKpi

T0 = 1_767_571_200 * 10**9  # Monday 2026-01-05 00:00Z
NS = 10**9
RATIOS = ("availability", "performance", "quality", "oee", "teep")


def _offline_kpi(store: Store) -> JsonKpi:
    """KPIs as `genba kpi` computes them from a stopped node's store."""
    last = store.last()
    newest = int(last.ts_ns.max()) + 1

    def vouched() -> int:
        return newest

    return JsonKpi(
        Kpi(
            parse_config(example_config()),
            TagRegistry(store.load_tags()),
            store,
            RealClock(),
            vouched_until=vouched,
        )
    )


def _check(kpi: JsonKpi, tr: GroundTruth, start_ns: int, end_ns: int) -> dict[str, float]:
    """Every machine's ratios and losses within 0.5 points, counts exact; the worst miss."""
    answer = kpi.oee("berlin", str(start_ns // 10**6), str(end_ns // 10**6))
    assert answer["not_counted"] == []
    assert answer["warnings"] == []
    rows = [r for r in answer["rows"] if r["level"] == "machine"]
    assert len(rows) == 3
    worst: dict[str, float] = {}
    for row in rows:
        m = tr.machines[row["entity"]]
        for k in RATIOS:
            err = abs(row[k] - getattr(m, k)) * 100
            assert err < 0.5, (row["entity"], k, row[k], getattr(m, k))
            worst[k] = max(worst.get(k, 0.0), err)
        for loss, minutes in m.losses_min.items():
            err = abs(row["losses_min"][loss] - minutes) / (m.planned_s / 60) * 100
            assert err < 0.5, (row["entity"], loss, row["losses_min"][loss], minutes)
            worst[loss] = max(worst.get(loss, 0.0), err)
        assert row["counts"]["good"] == m.good
        assert row["counts"]["reject"] == m.rejects
        assert row["counts"]["unattributed"] == 0
    print("\nlargest deviation from the truth, percentage points:")
    print("\n".join(f"  {k:20s} {v:.3f}" for k, v in worst.items()))
    return worst


def test_a_week_sent_by_exception_is_within_half_a_point(tmp_path: Path) -> None:
    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    reg = TagRegistry()
    tags = reg.ensure(sim.tag_specs())
    ids = np.array([t.id for t in tags], dtype=np.int32)
    rbe = ReportByException(None, sim.tag_paths, deadband_pct=0.5)
    store = DuckDBStore(tmp_path / "rbe.duckdb")
    store.save_tags(tags)
    dense = 0
    week_s = 7 * 86_400
    for hours in range(6, 7 * 24 + 6, 6):
        ts, values = sim.advance(min(hours * 3600.0, week_s + 1.0))
        dense += int((~np.isnan(values)).sum())
        sent = rbe.filter(values)
        keep = ~np.isnan(sent)
        rows, cols = np.nonzero(keep)
        store.append(SampleBatch.from_columns(tag_ids=ids[cols], ts_ns=ts[rows], values=sent[keep]))
    assert rbe.sent_values < dense / 2  # far fewer samples than a 1 Hz scan
    try:
        _check(_offline_kpi(store), truth(sim, T0, T0 + week_s * NS), T0, T0 + week_s * NS)
    finally:
        store.close()


async def _drive(sim: Simulator, out: ReportByException, hours: float, step_s: float) -> None:
    await out.start()
    try:
        while sim.now_s < hours * 3600:
            ts, values = sim.advance(min(sim.now_s + step_s, hours * 3600 + 1.0))
            await out.publish(ts, values)
    finally:
        await out.stop()


async def _stored(rn: RunningNode, at_least: int) -> None:
    """Wait until the node has stored what was sent and then nothing more for a while."""
    try:
        await wait_until(lambda: rn.node.writer.stats.stored_samples >= at_least, 60)
    except BaseException:
        print(f"sent {at_least}, stored {rn.node.writer.stats.stored_samples}")
        raise
    seen = -1
    while seen != rn.node.writer.stats.stored_samples:
        seen = rn.node.writer.stats.stored_samples
        await asyncio.sleep(0.1)


def _check_stopped_node(config: GenbaConfig, sim: Simulator, hours: float) -> None:
    """The stopped node's store, read as `genba kpi` reads it, against the truth."""
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    end = T0 + int(hours * 3600) * NS
    try:
        _check(_offline_kpi(store), truth(sim, T0, end), T0, end)
    finally:
        store.close()


@pytest.mark.timeout(300)  # a simulated week through a real broker: ~110 s alone on 2 cores
async def test_a_week_over_sparkplug_by_exception_is_within_half_a_point(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    config = make_config(f"""
[store]
flush_interval_ms = 50

[[connector]]
kind = "sparkplug"
host = "{mqtt_broker.host}"
port = {mqtt_broker.port}
edge_node_levels = "-"
max_future_s = 31536000
""")  # fmt: skip
    rn: RunningNode = await run_node(config)
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    hours = 168.0  # the simulator's week
    out = ReportByException(
        SparkplugOutput(sim, mqtt_broker.host, mqtt_broker.port), sim.tag_paths, deadband_pct=0.5
    )
    await _drive(sim, out, hours, 600.0)
    await _stored(rn, out.sent_values)
    await rn.shutdown()
    _check_stopped_node(config, sim, hours)


async def test_a_shift_over_opcua_by_exception_is_within_half_a_point(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    port = free_port()
    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    server = OpcUaOutput(sim, port)
    out = ReportByException(server, sim.tag_paths, deadband_pct=2.0)
    await out.start()
    config = make_config(f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "opcua"
endpoint = "{server.endpoint}"
sampling_ms = 20
batch_ms = 20
""")  # fmt: skip
    rn: RunningNode = await run_node(config)
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 20)
    hours = 8.0
    await asyncio.sleep(1.0)  # the subscription's first values (the server's initial ones)
    first = rn.node.writer.stats.stored_samples
    try:
        # Ten simulated minutes at a time, each stored before the next: a server keeps a
        # bounded queue of changes per variable (queue_size), as real ones do.
        while sim.now_s < hours * 3600:
            ts, values = sim.advance(min(sim.now_s + 600.0, hours * 3600 + 1.0))
            await out.publish(ts, values)
            await _stored(rn, first + out.sent_values)
        await rn.shutdown()
    finally:
        await out.stop()
    _check_stopped_node(config, sim, hours)

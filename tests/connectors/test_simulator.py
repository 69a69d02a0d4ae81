"""The simulator connector: a scenario's plant on the bus, following the node's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from genba.bus import Bus
from genba.clock import ManualClock
from genba.config import GenbaConfig, example_config, load_config, parse_config
from genba.connectors import create_connector
from genba.connectors.simulator import SimulatorConnector
from genba.errors import ConfigError, WriteRejectedError
from genba.node import Node
from genba.sim import SIGNALS
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch
from tests.conftest import wait_until

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z


def _connector(config: GenbaConfig | None = None) -> tuple[SimulatorConnector, Bus]:
    config = config or parse_config(example_config())
    bus = Bus(TagRegistry())
    conn, _ = create_connector(
        0, config.connector[0], config=config, bus=bus, clock=ManualClock(start_ns=T0)
    )
    assert isinstance(conn, SimulatorConnector)
    return conn, bus


def test_declares_every_scenario_tag_and_config_metadata_wins() -> None:
    _, bus = _connector()
    assert len(bus.registry) == 3 * len(SIGNALS)
    vib = bus.registry.get("berlin/packaging/line1/filler/vibration").spec
    assert (vib.unit, vib.high) == ("mm/s", 4.5)
    assert bus.registry.get("berlin/packaging/line1/capper/energy").spec.unit == "kWh"


def test_batches_hold_one_sample_per_tag_and_tick_on_the_clock() -> None:
    conn, _ = _connector()
    batch = conn.batch_until(10.0)
    assert len(batch) == 10 * 3 * len(SIGNALS)
    assert np.unique(batch.ts_ns).tolist() == [T0 + i * NS_PER_S for i in range(10)]


async def test_setpoint_writes_reach_the_model_and_the_tags() -> None:
    conn, bus = _connector()
    conn.batch_until(5.0)
    await conn.write("berlin/packaging/line1/filler/speed_sp", 70.0)
    batch = conn.batch_until(10.0)
    sp = bus.registry.get("berlin/packaging/line1/filler/speed_sp").id
    assert batch.values[batch.tag_ids == sp][-1] == 70.0
    with pytest.raises(WriteRejectedError, match="not a setpoint of the simulated plant"):
        await conn.write("berlin/packaging/line1/filler/vibration", 1.0)
    with pytest.raises(WriteRejectedError, match=r"10\.\.100"):
        await conn.write("berlin/packaging/line1/filler/speed_sp", 150.0)


def test_unknown_scenario_file_is_a_config_error() -> None:
    config = parse_config(example_config().replace('scenario = "demo"', 'scenario = "nope.toml"'))
    with pytest.raises(ConfigError, match=r"No scenario file at nope\.toml"):
        _connector(config)


def test_scenario_path_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        '[[line]]\npath = "s/a/l"\n[[line.machine]]\nname = "press"\n'
    )
    (tmp_path / "genba.toml").write_text(
        '[[connector]]\nkind = "simulator"\nscenario = "mine.toml"\n'
    )
    _, bus = _connector(load_config(tmp_path / "genba.toml"))
    assert "s/a/l/press/state" in bus.registry


async def test_runs_in_a_node_faster_than_real_time(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    text = example_config().replace('kind = "real"', 'kind = "simulated"\nspeed = 600.0')
    node = Node(make_config(text))
    task = asyncio.create_task(node.run())
    # 600× real time: ten simulated minutes in about a second
    await wait_until(lambda: node.writer.stats.stored_samples >= 600 * 3 * len(SIGNALS), 15)
    node.stop()
    await task
    assert node.health()["connectors"][0]["errors"] == 0


def test_health_reports_a_sample_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from genba.connectors import ConnectorHealth

    clock = iter([100.0, 106.0])
    monkeypatch.setattr("genba.connectors._base.time.monotonic", lambda: next(clock))
    h = ConnectorHealth("x", "simulator")
    assert h.samples_per_s() == 0.0  # first mark
    h.samples = 600
    assert h.samples_per_s() == 100.0  # 600 samples in 6 s


async def test_behind_the_clock_the_plant_catches_up_in_bounded_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hour behind (a fast clock, a busy machine) is simulated in steps of at most
    MAX_BATCH_SAMPLES, each published before the next: every tick once, in order, and never
    the whole hour's samples in one batch."""
    import genba.connectors.simulator as simulator

    monkeypatch.setattr(simulator, "MAX_BATCH_SAMPLES", 10_000)
    conn, bus = _connector()
    sub = bus.subscribe("#", name="test")
    conn.ctx.clock.advance(3600.0)  # type: ignore[attr-defined]
    task = asyncio.create_task(conn.run())
    sizes: list[int] = []
    ticks: list[int] = []
    while not ticks or ticks[-1] < T0 + 3599 * NS_PER_S:
        for item in await sub.drain(timeout=5):
            assert isinstance(item, SampleBatch)
            sizes.append(len(item))
            ticks.extend(np.unique(item.ts_ns).tolist())
    task.cancel()
    assert max(sizes) <= 10_000
    assert ticks[:3600] == [T0 + i * NS_PER_S for i in range(3600)]

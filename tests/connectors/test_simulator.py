"""The minimal simulator's own invariants: it must be trustworthy enough to test against."""

import numpy as np

from genba.bus import Bus
from genba.clock import ManualClock
from genba.config import example_config, parse_config
from genba.connectors import create_connector
from genba.connectors.simulator import BLOCKED, DOWN, RUNNING, SIGNALS, STARVED, SimulatorConnector
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch


def _simulate(seed: int = 42, ticks: int = 3600) -> tuple[SimulatorConnector, SampleBatch]:
    config = parse_config(example_config().replace("seed = 42", f"seed = {seed}"))
    bus = Bus(TagRegistry())
    conn, _ = create_connector(0, config.connector[0], config=config, bus=bus, clock=ManualClock())
    assert isinstance(conn, SimulatorConnector)
    return conn, conn.ticks(0, ticks)


def _series(conn: SimulatorConnector, batch: SampleBatch, machine: int, signal: str) -> np.ndarray:
    index = machine * len(SIGNALS) + [s[0] for s in SIGNALS].index(signal)
    return batch.values[batch.tag_ids == conn._ids[index]]


def test_one_row_per_tag_and_tick_on_the_sample_grid() -> None:
    _conn, batch = _simulate(ticks=10)
    assert len(batch) == 10 * 3 * len(SIGNALS)
    assert np.unique(batch.ts_ns).tolist() == [i * NS_PER_S for i in range(10)]


def test_same_seed_same_data_other_seed_other_data() -> None:
    _, a = _simulate(seed=1, ticks=600)
    _, b = _simulate(seed=1, ticks=600)
    _, c = _simulate(seed=2, ticks=600)
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)


def test_counts_are_monotone_and_flow_downstream() -> None:
    conn, batch = _simulate(ticks=3 * 3600)
    good = [_series(conn, batch, m, "good_count") for m in range(3)]
    rejects = [_series(conn, batch, m, "reject_count") for m in range(3)]
    for series in good + rejects:
        assert np.all(np.diff(series) >= 0)
    # A machine cannot make more parts than it got: downstream good+rejects <= upstream good.
    for up, down in ((0, 1), (1, 2)):
        assert good[down][-1] + rejects[down][-1] <= good[up][-1]
    # About an hour's worth of 1 s cycles per hour, minus losses.
    assert 2000 < good[2][-1] < 3 * 3600


def test_states_are_known_codes_and_speed_is_zero_unless_running() -> None:
    conn, batch = _simulate(ticks=6 * 3600)
    for m in range(3):
        state = _series(conn, batch, m, "state")
        speed = _series(conn, batch, m, "speed")
        current = _series(conn, batch, m, "motor_current")
        assert set(np.unique(state)) <= {RUNNING, STARVED, BLOCKED, DOWN}
        assert np.all(speed[state != RUNNING] == 0)
        assert np.all(current[state == DOWN] == 0)
        assert (state == RUNNING).mean() > 0.5
    # Over six hours with MTBF 30 min there are breakdowns, and downstream machines starve.
    assert np.any(_series(conn, batch, 0, "state") == DOWN)
    assert np.any(_series(conn, batch, 2, "state") == STARVED)


def test_declares_its_tags_with_units_and_config_metadata_wins() -> None:
    config = parse_config(example_config())
    bus = Bus(TagRegistry())
    create_connector(0, config.connector[0], config=config, bus=bus, clock=ManualClock())
    temp = bus.registry.get("berlin/packaging/line1/filler/temperature").spec
    assert (temp.unit, temp.description) == ("degC", "Product temperature at the filler bowl")
    assert bus.registry.get("berlin/packaging/line1/capper/vibration").spec.unit == "mm/s"
    assert len(bus.registry) == 3 * len(SIGNALS)

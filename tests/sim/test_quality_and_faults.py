"""The setpoint optimum the simulator reports is real, and injected sensor faults show."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genba.sim import SIGNALS, Simulator, load_scenario, truth
from genba.sim._scenario import FaultSettings

H = 3600


ONE_MACHINE = """
[plant]
seed = 3
[machine_defaults]
mtbf_h = 1000.0
wear_weibull_scale_h = 10000.0
small_stops_per_h = 0.0
reduced_speed_per_day = 0.0
[[line]]
path = "s/a/l"
[[line.machine]]
name = "press"
temperature_drift_c = 0.0
temperature_opt_c = 45.0
"""


def _good_per_hour(tmp_path: Path, *, temperature: float, speed: float) -> float:
    (tmp_path / "one.toml").write_text(ONE_MACHINE)
    sim = Simulator(load_scenario(tmp_path / "one.toml"), t0_ns=0)
    sim.write_setpoint("s/a/l/press/temperature_sp", temperature)
    sim.write_setpoint("s/a/l/press/speed_sp", speed)
    sim.advance(6 * H)
    return truth(sim, 0, 6 * H * 10**9).machines["s/a/l/press"].good / 6


def test_the_reported_optimum_makes_the_most_good_parts(tmp_path: Path) -> None:
    """The optimum is per machine: its own good parts per hour (docs/simulator.md)."""
    sim = Simulator(load_scenario("demo"), t0_ns=0)
    sim.advance(60.0)
    opt = truth(sim, 0, 60 * 10**9).machines["berlin/packaging/line1/filler"].optimum
    assert opt["speed_sp"] == 92.0
    best = _good_per_hour(tmp_path, temperature=45.0, speed=92.0)
    for temperature, speed in ((45.0, 85.0), (45.0, 99.0), (41.0, 92.0), (49.0, 92.0)):
        assert best > _good_per_hour(tmp_path, temperature=temperature, speed=speed) * 1.005


def test_truth_reports_the_drifting_temperature_optimum() -> None:
    sim = Simulator(load_scenario("demo"), t0_ns=0)
    sim.advance(30 * H)
    early = truth(sim, 0, 2 * H * 10**9).machines["berlin/packaging/line1/filler"].optimum
    late = (
        truth(sim, 28 * H * 10**9, 30 * H * 10**9).machines["berlin/packaging/line1/filler"].optimum
    )
    assert early["speed_sp"] == late["speed_sp"] == 92.0
    assert abs(early["temperature_sp"] - late["temperature_sp"]) > 0.5  # it drifts
    assert abs(early["temperature_sp"] - 44.0) <= 3.0  # within the configured amplitude


def test_dropout_and_stuck_faults(tmp_path: Path) -> None:
    base = load_scenario("demo")
    vib, cur = (
        "berlin/packaging/line1/filler/vibration",
        "berlin/packaging/line1/capper/motor_current",
    )
    scenario = base.model_copy(
        update={
            "fault": [
                FaultSettings(tag=vib, kind="dropout", start_h=1.0, duration_min=10),
                FaultSettings(tag=cur, kind="stuck", start_h=1.5, duration_min=30),
            ]
        }
    )
    sim = Simulator(scenario, t0_ns=0)
    parts = [sim.advance(t)[1] for t in (3900.0, 5500.0, 7200.0)]  # the stuck window spans steps
    values = np.vstack(parts)
    t = np.arange(len(values))
    v = values[:, sim.tag_paths.index(vib)]
    assert np.isnan(v[(t >= 3600) & (t < 4200)]).all()
    assert not np.isnan(v[(t < 3600) | (t >= 4200)]).any()
    c = values[:, sim.tag_paths.index(cur)]
    stuck = c[(t >= 5400) & (t < 7200)]
    assert np.all(stuck == stuck[0])
    assert len(np.unique(c[(t >= 3600) & (t < 5400)])) > 100  # moving before
    assert len(SIGNALS) == values.shape[1] // 3

"""One simulated week of the demo plant, run faster than real time, checked against the
simulator's own invariants (the acceptance test of the plant simulator)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from genba.sim import SIGNALS, Simulator, load_scenario, truth
from genba.states import MachineState as S

WEEK_S = 7 * 86_400
T0 = 1_767_571_200 * 10**9  # Monday 2026-01-05 00:00 UTC
COL = {name: i for i, (name, _, _) in enumerate(SIGNALS)}


@pytest.fixture(scope="module")
def week() -> tuple[Simulator, np.ndarray, np.ndarray, float]:
    sim = Simulator(load_scenario("demo"), t0_ns=T0)  # a fixed start: the calendar matters
    t = time.perf_counter()
    ts, values = sim.advance(float(WEEK_S))
    return sim, ts, values.reshape(len(ts), -1, len(SIGNALS)), time.perf_counter() - t


def test_runs_much_faster_than_real_time(week: tuple) -> None:  # type: ignore[type-arg]
    _, ts, _, wall_s = week
    assert len(ts) == WEEK_S  # 1 Hz
    assert wall_s < WEEK_S / 1000  # more than 1000× real time


def test_states_cover_time_exactly(week: tuple) -> None:  # type: ignore[type-arg]
    sim = week[0]
    tr = truth(sim, sim.t0_ns, sim.t0_ns + WEEK_S * 10**9)
    for path, m in tr.machines.items():
        assert sum(m.seconds.values()) == pytest.approx(WEEK_S, abs=1e-6), path
    tl = tr.timeline.to_pydict()
    for path in tr.machines:
        rows = [i for i, m in enumerate(tl["machine"]) if m == path]
        starts = [tl["start_ns"][i] for i in rows]
        ends = [tl["end_ns"][i] for i in rows]
        assert starts[0] == sim.t0_ns
        assert ends[-1] == sim.t0_ns + WEEK_S * 10**9
        assert starts[1:] == ends[:-1]  # no gap, no overlap


def test_counts_add_up_along_the_line(week: tuple) -> None:  # type: ignore[type-arg]
    sim, _, v, _ = week
    plant = sim.plant
    good = v[-1, :, COL["good_count"]]
    rejects = v[-1, :, COL["reject_count"]]
    tr = truth(sim, sim.t0_ns, sim.t0_ns + WEEK_S * 10**9)
    line = plant.lines[0]
    for i in range(len(line.buffers)):
        in_buffer = len(line.buffers[i].parts)
        # Good parts of machine i are on the conveyor, held by i (blocked), or were taken by
        # i+1 (made, or in its hands right now).
        unaccounted = good[i] - in_buffer - (good[i + 1] + rejects[i + 1])
        assert 0 <= unaccounted <= 2
    # Counter tags agree with the truth (the counters start at zero with the week). The last
    # tick is one second before the end: a part may complete in between.
    for j, m in enumerate(tr.machines.values()):
        assert 0 <= m.good - good[j] <= 2
        assert 0 <= m.rejects - rejects[j] <= 2
    assert sum(tr.lines[line.path].finished.values()) == tr.machines[plant.machines[-1].path].good


def test_counters_and_energy_never_decrease(week: tuple) -> None:  # type: ignore[type-arg]
    _, _, v, _ = week
    for name in ("energy", "good_count", "reject_count"):
        assert np.all(np.diff(v[:, :, COL[name]], axis=0) >= 0), name
    assert np.all(v[-1, :, COL["energy"]] > 100)  # kWh a week


def test_oee_identity_and_losses_close(week: tuple) -> None:  # type: ignore[type-arg]
    sim = week[0]
    tr = truth(sim, sim.t0_ns, sim.t0_ns + WEEK_S * 10**9)
    for m in tr.machines.values():
        assert m.availability is not None
        assert m.performance is not None
        assert m.quality is not None
        assert m.oee is not None
        assert m.availability * m.performance * m.quality == pytest.approx(m.oee)
        losses = sum(v for k, v in m.losses_min.items()) * 60
        assert m.planned_s - losses == pytest.approx(m.fully_productive_s, rel=1e-9)
        assert 0.3 < m.oee < 0.9
        assert m.performance <= 1.0
        assert m.losses_min["reduced_speed"] > 0
        assert m.losses_min["small_stops"] > 0
        assert m.losses_min["setup_adjustments"] > 0


def test_wear_out_failures_are_preceded_by_drift_and_sudden_ones_happen(week: tuple) -> None:  # type: ignore[type-arg]
    sim, ts, v, _ = week
    t_s = (ts - sim.t0_ns) / 1e9
    failures = sim.plant.failures
    wear = [f for f in failures if f.wear_out]
    assert len(wear) >= 3
    assert any(not f.wear_out for f in failures)
    warning_s = sim.plant.machines[0].p.wear_warning_h * 3600
    checked = 0
    for f in wear:
        vib = v[:, f.machine, COL["vibration"]]
        running = v[:, f.machine, COL["state"]] == S.RUNNING
        before = running & (t_s >= f.start_s - 1800) & (t_s < f.start_s)
        baseline = (
            running & (t_s >= f.start_s - 3 * warning_s) & (t_s < f.start_s - 1.5 * warning_s)
        )
        if before.sum() < 60 or baseline.sum() < 600:
            continue  # too close to the start, or to the previous failure, to compare
        assert np.median(vib[before]) > np.median(vib[baseline]) + 2.0, f
        checked += 1
    assert checked >= 3, f"only {checked} wear-out failures had room for a baseline"


def test_same_seed_same_week_other_seed_other_week() -> None:
    a = Simulator(load_scenario("demo"), t0_ns=0).advance(3600.0)[1]
    b = Simulator(load_scenario("demo"), t0_ns=0).advance(3600.0)[1]
    s = load_scenario("demo")
    other = s.model_copy(update={"plant": s.plant.model_copy(update={"seed": 1})})
    c = Simulator(other, t0_ns=0).advance(3600.0)[1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_samples_do_not_depend_on_how_time_is_cut() -> None:
    whole = Simulator(load_scenario("demo"), t0_ns=0).advance(7200.0)[1]
    sim = Simulator(load_scenario("demo"), t0_ns=0)
    parts = [sim.advance(t)[1] for t in (0.5, 1.0, 600.0, 600.2, 3601.7, 7200.0)]
    assert np.allclose(np.vstack(parts), whole, rtol=1e-12, atol=1e-9)

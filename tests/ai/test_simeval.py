"""``genba ai evaluate sim``: alarms judged against the simulator's own wear-out failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from genba.ai._simeval import T0_NS, _judge, onsets
from genba.cli import cli
from genba.sim import Simulator, load_scenario
from genba.sim._sampler import SIGNAL_INDEX, SIGNALS
from genba.states import MachineState
from genba.types import NS_PER_S

DAYS = 5


@pytest.fixture(scope="module")
def run() -> tuple[Simulator, np.ndarray, np.ndarray]:
    """Five simulated days of the demo line: the simulator, and the filler's grid every 10 s
    (times, running)."""
    sim = Simulator(load_scenario("demo"), t0_ns=T0_NS)
    ts, values = sim.advance(DAYS * 86_400.0)
    every = ts[::10]
    running = values[::10, SIGNAL_INDEX["state"]] == MachineState.RUNNING  # machine 0's state
    assert len(SIGNALS) == values.shape[1] // len(sim.plant.machines)
    return sim, every, running


def wear_outs(sim: Simulator) -> list[float]:
    return [f.start_s for f in sim.plant.failures if f.machine == 0 and f.wear_out]


def test_no_alarm_catches_nothing_and_cries_no_wolf(run: tuple[Simulator, np.ndarray, np.ndarray]) -> None:  # fmt: skip
    sim, t, running = run
    r = _judge(sim, 0, 1, "filler", t, running, np.full(len(t), np.nan), 10.0, 1.0, 1.0)
    assert (r.caught, r.false_alarms, r.leads_h) == (0, 0, [])
    assert r.wear_outs >= 2  # the demo's parts last ~30 running hours
    assert r.wear_outs <= len(wear_outs(sim))
    assert r.scored_weeks == pytest.approx(DAYS / 7, rel=1e-3)


def test_alarms_two_running_hours_ahead_catch_every_wear_out(run: tuple[Simulator, np.ndarray, np.ndarray]) -> None:  # fmt: skip
    sim, t, running = run
    run_s = np.cumsum(running) * 10.0
    t_s = (t - T0_NS) / NS_PER_S
    z = np.where(running, 0.5, np.nan)
    for fail in wear_outs(sim):
        at = run_s[np.searchsorted(t_s, fail) - 1]
        i = int(np.searchsorted(run_s, at - 2 * 3600))
        z[i : i + 30] = 1.5  # an alarm 2 running hours before, then cleared
    r = _judge(sim, 0, 1, "filler", t, running, z, 10.0, 1.0, 1.0)
    assert r.caught == r.wear_outs >= 2
    assert r.false_alarms == 0
    assert all(1.99 <= x <= 2.01 for x in r.leads_h)
    # the same alarms a quarter hour before the failures are too late: none caught, none false
    late = np.where(running, 0.5, np.nan)
    for fail in wear_outs(sim):
        at = run_s[np.searchsorted(t_s, fail) - 1]
        i = int(np.searchsorted(run_s, at - 900))
        late[i : i + 30] = 1.5
    r = _judge(sim, 0, 1, "filler", t, running, late, 10.0, 1.0, 1.0)
    assert (r.caught, r.false_alarms) == (0, 0)


def test_an_alarm_far_from_any_wear_out_is_a_false_one(run: tuple[Simulator, np.ndarray, np.ndarray]) -> None:  # fmt: skip
    sim, t, running = run
    z = np.where(running, 0.5, np.nan)
    z[:30] = 2.0  # the first five minutes: the first part is new
    r = _judge(sim, 0, 1, "filler", t, running, z, 10.0, 1.0, 1.0)
    assert r.false_alarms == 1
    assert r.caught == 0


def test_onsets_hold_through_gaps_and_clear_under_the_deadband() -> None:
    z = np.array([1.2, np.nan, 1.3, 0.95, 1.2, 0.85, 1.05])
    assert onsets(z).tolist() == [True, False, False, False, False, False, True]


def test_the_command_trains_scores_and_reports_per_seed() -> None:
    r = CliRunner().invoke(cli, ["ai", "evaluate", "sim", "--seeds", "5", "--days", "2", "--train-days", "1", "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    pooled = got["pooled"]
    assert pooled["machines"] == 3
    assert pooled["machine_weeks"] == pytest.approx(3 / 7, rel=1e-3)
    assert pooled["wear_outs"] == sum(m["wear_outs"] for m in got["machines"])
    assert got["seeds"][0]["seed"] == 5
    assert all(m["threshold"] > 0 for m in got["machines"])
    assert all(x >= 1.0 for m in got["machines"] for x in m["leads_h"])
    bad = CliRunner().invoke(cli, ["ai", "evaluate", "sim", "--days", "2", "--train-days", "3"])
    assert bad.exit_code == 1
    assert "train_days (3.0) must be more than 0 and under days (2.0)" in bad.output

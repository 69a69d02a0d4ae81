"""``genba ai evaluate sim``: a simulated month of a plant through the node's path, scored
against the simulator's truth — does the watch warn before wear-out failures, and how often
does it cry wolf?

For each seed: the plant runs ``days`` (as fast as the CPU allows) into a fresh DuckDB store,
as a node stores it; each machine's model is trained from that store on the first
``train_days`` (:func:`genba.ai._train.train`: the steady running rows, per mode, trimmed);
the rest is scored row by row as the node's watch scores it (the steady rows on the model's
grid, the window carried over stops; ``tests/ai/test_train.py`` holds the watch to exactly
these scores), and the ISA-18.2 alarm at 1.0 (deadband :data:`ALARM_DEADBAND`) is raised and
cleared on them.

Truth (the simulator's, never shown to the model): a wear-out failure gives warning for the
last ``wear_warning_h`` running hours of its part's life (the drift the sampler adds).

* **caught**: an alarm raised inside that warning window at least ``lead_h`` running hours
  before the failure; **lead**: running hours from the first such alarm to the failure;
* **false alarm**: an alarm raised outside every warning window (the window of a part still
  wearing at the end of the run included), counted per machine-week of scored time;
* a wear-out counts when its whole warning window lies in the scored time; sudden failures
  (no warning by design) are reported, not counted as misses.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.ai._detector import Detector
from genba.ai._train import frame, steady, train
from genba.clock import RealClock
from genba.config import GenbaConfig, ModelSettings, StoreSettings
from genba.errors import ConfigError
from genba.historian import Store, TimeRange, open_store
from genba.paths import matches
from genba.sim import Simulator, load_scenario
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch

T0_NS = 1_767_571_200 * NS_PER_S  # Monday 2026-01-05 00:00Z: every seed starts the same day
DAY_S = 86_400
ALARM_DEADBAND = 0.1
"""The anomaly alarm clears when the score falls under 1 − this (ISA-18.2: no chattering)."""


@dataclass
class MachineResult:
    seed: int
    machine: str
    scored_weeks: float
    wear_outs: int
    caught: int
    leads_h: list[float]
    false_alarms: int
    sudden: int
    threshold: float


@dataclass
class SimReport:
    scenario: str
    detector: str
    settings: dict[str, Any]
    days: float
    train_days: float
    lead_h: float
    machines: list[MachineResult] = field(default_factory=list)

    @property
    def wear_outs(self) -> int:
        return sum(m.wear_outs for m in self.machines)

    @property
    def caught_share(self) -> float | None:
        n = self.wear_outs
        return sum(m.caught for m in self.machines) / n if n else None

    @property
    def median_lead_h(self) -> float | None:
        leads = [x for m in self.machines for x in m.leads_h]
        return float(np.median(leads)) if leads else None

    @property
    def false_alarms_per_machine_week(self) -> float | None:
        weeks = sum(m.scored_weeks for m in self.machines)
        return sum(m.false_alarms for m in self.machines) / weeks if weeks else None

    def per_seed(self) -> list[dict[str, Any]]:
        out = []
        for seed in sorted({m.seed for m in self.machines}):
            part = SimReport(self.scenario, self.detector, self.settings, self.days,
                             self.train_days, self.lead_h, [m for m in self.machines if m.seed == seed])  # fmt: skip
            out.append({"seed": seed, **part.pooled()})
        return out

    def pooled(self) -> dict[str, Any]:
        return {
            "machines": len(self.machines),
            "wear_outs": self.wear_outs,
            "caught": sum(m.caught for m in self.machines),
            "caught_share": self.caught_share,
            "median_lead_h": self.median_lead_h,
            "false_alarms": sum(m.false_alarms for m in self.machines),
            "machine_weeks": sum(m.scored_weeks for m in self.machines),
            "false_alarms_per_machine_week": self.false_alarms_per_machine_week,
            "sudden_failures": sum(m.sudden for m in self.machines),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "detector": self.detector, "settings": self.settings,
            "days": self.days, "train_days": self.train_days, "lead_h": self.lead_h,
            "pooled": self.pooled(), "seeds": self.per_seed(),
            "machines": [asdict(m) for m in self.machines],
        }  # fmt: skip


def onsets(z: npt.NDArray[np.float64], deadband: float = ALARM_DEADBAND) -> npt.NDArray[np.bool_]:
    """Where a high alarm at 1.0 is raised on the scores ``z`` (NaN: no score, the alarm
    holds), clearing under ``1 - deadband``.

    >>> onsets(np.array([0.5, 1.2, 0.95, 1.3, np.nan, 1.1, 0.8, 1.01])).astype(int).tolist()
    [0, 1, 0, 0, 0, 0, 0, 1]
    """
    out = np.zeros(len(z), dtype=bool)
    active = False
    for i in np.flatnonzero(~np.isnan(z)):  # a few events a day: the scan is over scores
        if not active and z[i] > 1.0:
            active = out[i] = True
        elif active and z[i] < 1.0 - deadband:
            active = False
    return out


def evaluate_sim(
    config: GenbaConfig,
    model: ModelSettings,
    make: type[Detector],
    *,
    seeds: list[int],
    days: float = 30.0,
    train_days: float = 7.0,
    lead_h: float = 1.0,
) -> SimReport:
    """Score ``model`` on a simulated plant per seed (module docstring)."""
    scenario = scenario_of(config, "genba ai evaluate sim")
    if not 0 < train_days < days:
        raise ConfigError(f"train_days ({train_days}) must be more than 0 and under days ({days})")
    report = SimReport(scenario, make.kind, dict(model.settings), days, train_days, lead_h)
    for seed in seeds:
        report.machines += _one_seed(config, model, make, scenario, seed, days, train_days, lead_h)  # fmt: skip
    return report


@contextmanager
def simulated(scenario: str, seed: int, days: float, *, step_s: float = 6 * 3600.0, before: Callable[[Simulator, float], None] | None = None) -> Iterator[tuple[Simulator, Store, TagRegistry]]:  # fmt: skip
    """``days`` of the scenario's plant (with ``seed``) stored in a fresh DuckDB store in a
    temporary folder, as a node stores it; the folder goes when the block ends. ``before``
    is called with the simulator and the time (s) before each ``step_s`` is simulated (to
    write setpoints, as an operator would)."""
    sc = load_scenario(scenario)
    sc = sc.model_copy(update={"plant": sc.plant.model_copy(update={"seed": seed})})
    sim = Simulator(sc, t0_ns=T0_NS)
    with tempfile.TemporaryDirectory(prefix="genba-eval-") as tmp:
        store = open_store(StoreSettings(), data_dir=Path(tmp))
        try:
            reg = TagRegistry()
            tags = reg.ensure(sim.tag_specs())
            store.save_tags(tags)
            ids = np.array([t.id for t in tags], dtype=np.int32)
            for k in range(1, int(np.ceil(days * DAY_S / step_s)) + 1):
                if before is not None:
                    before(sim, (k - 1) * step_s)
                ts, values = sim.advance(min(k * step_s, days * DAY_S))
                rows, cols = np.nonzero(~np.isnan(values))
                store.append(SampleBatch.from_columns(tag_ids=ids[cols], ts_ns=ts[rows], values=values[rows, cols]))  # fmt: skip
            yield sim, store, reg
        finally:
            store.close()


def scenario_of(config: GenbaConfig, what: str) -> str:
    """The scenario of the config's simulator connector; none is an error naming ``what``."""
    sims = [c for c in config.connector if c.kind == "simulator"]
    if not sims:
        raise ConfigError(
            f"{what} needs a [[connector]] kind = 'simulator' in the config: it names the "
            "scenario whose machines are scored"
        )
    return str((sims[0].model_extra or {}).get("scenario", "demo"))


def _one_seed(config: GenbaConfig, model: ModelSettings, make: type[Detector], scenario: str, seed: int, days: float, train_days: float, lead_h: float) -> list[MachineResult]:  # fmt: skip
    with simulated(scenario, seed, days) as (sim, store, reg):
        split = T0_NS + int(train_days * DAY_S * NS_PER_S)
        end = T0_NS + int(days * DAY_S * NS_PER_S)
        paths = [m.path for m in sim.plant.machines]
        out = []
        for machine in config.machine:
            if not matches(model.machines, machine.path) or machine.path not in paths:
                continue
            v = train(config, store, reg, RealClock(), model, machine, split, make)
            det = v.load({make.kind: make})
            f = frame(store, reg, machine.path, [machine.signals.state_tag, *v.signals] + ([v.mode] if v.mode else []), TimeRange(split, end), int(model.every_s * NS_PER_S))  # fmt: skip
            n_sig = len(v.signals)
            x, mode = f.x[:, 1 : 1 + n_sig], (f.x[:, -1] if v.mode else None)
            running = f.x[:, 0] == MachineState.RUNNING
            ok = steady(f.t_ns, running, model.settle, model.settle_max_s)
            z = np.full(len(f.t_ns), np.nan)
            z[ok] = det.score(x[ok], None if mode is None else mode[ok]).score / det.threshold
            idx = paths.index(machine.path)
            out.append(_judge(sim, idx, seed, machine.path, f.t_ns, running, z, model.every_s, lead_h, det.threshold))  # fmt: skip
        return out


def _judge(sim: Simulator, idx: int, seed: int, path: str, t_ns: npt.NDArray[np.int64], running: npt.NDArray[np.bool_], z: npt.NDArray[np.float64], every_s: float, lead_h: float, threshold: float) -> MachineResult:  # fmt: skip
    """The machine's alarms against the simulator's failures (module docstring)."""
    run_s = np.cumsum(running) * every_s  # running seconds up to each row
    t_s = (t_ns - T0_NS) / NS_PER_S
    warn_s = sim.plant.machines[idx].p.wear_warning_h * 3600.0
    alarms = t_s[onsets(z)]
    windows: list[tuple[float, float]] = []
    wear = caught = sudden = 0
    leads: list[float] = []
    fits = _part_fits(sim, idx)
    for f in sim.plant.failures:
        if f.machine != idx or f.start_s < t_s[0]:
            continue
        if not f.wear_out:
            sudden += 1
            continue
        at = np.searchsorted(t_s, f.start_s)
        run_at_fail = float(run_s[max(int(at) - 1, 0)])
        fitted = float(fits[np.searchsorted(fits, f.start_s) - 1]) if len(fits) else 0.0
        begin = min(int(np.searchsorted(run_s, run_at_fail - warn_s)), len(t_s) - 1)
        start = max(float(t_s[begin]), fitted)
        windows.append((start, f.start_s))
        if start <= t_s[0]:
            continue  # its warning began before the scored time
        wear += 1
        inside = alarms[(alarms >= start) & (alarms < f.start_s)]
        lead = [(run_at_fail - run_s[np.searchsorted(t_s, a)]) / 3600 for a in inside]
        early = [x for x in lead if x >= lead_h]
        if early:
            caught += 1
            leads.append(early[0])
    # a part still wearing at the end: its warning window has begun, its failure not yet
    c = sim.sampler.carry
    left = float(c.wear_life[idx] - (c.run_s[idx] - c.wear_base[idx]))
    if left < warn_s:
        begin = np.searchsorted(run_s, run_s[-1] - (warn_s - left))
        windows.append((float(t_s[min(begin, len(t_s) - 1)]), float("inf")))
    false = sum(not any(a <= x < b for a, b in windows) for x in alarms)
    weeks = (t_s[-1] - t_s[0] + every_s) / (7 * DAY_S) if len(t_s) else 0.0
    return MachineResult(seed, path, weeks, wear, caught, leads, int(false), sudden, threshold)


def _part_fits(sim: Simulator, idx: int) -> npt.NDArray[np.float64]:
    """When each wear part of the machine was fitted, seconds after the start."""
    t, m, _ = sim.plant.logs.wear.columns(sim.plant.logs.wear.span(0.0, sim.now_s + 1.0))
    return np.sort(np.asarray(t[m == idx], dtype=np.float64))

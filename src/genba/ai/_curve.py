"""``genba ai evaluate curve``: does the model in service get better as the plant runs?

A simulated plant (the wear scenario) runs ``steps × step_days`` plus one step into a fresh
store. At the end of each step — day 7, 14, 21… by default — each machine's ``[[rul]]`` model
is retrained exactly as the node retrains it (:func:`genba.ai._iterate.challenge`: the first
version goes into service once the history holds ``min_failures`` failures; each later one is a
challenger, promoted only when it measures better on the days held out), and the version then
in service is scored against the simulator's truth — the RUL error over the last ``window_h``
running hours before each wear-out failure — on two spans no version has seen: the *next*
step (what the plant gets that week; it varies with which failures fall in it), and a *fixed
test span*, the last ``test_steps`` steps after the final retraining, the same for every step
(the learning curve proper: the same failures judge every version).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from genba.ai._champion import in_service
from genba.ai._iterate import challenge
from genba.ai._rul import RulModel, read_lives
from genba.ai._simeval import DAY_S, T0_NS, simulated
from genba.clock import RealClock
from genba.config import GenbaConfig, MachineSettings, RulSettings
from genba.errors import GenbaError
from genba.historian import Store, TimeRange
from genba.paths import matches
from genba.tags import TagRegistry
from genba.types import NS_PER_S

DAY_NS = DAY_S * NS_PER_S


@dataclass
class Step:
    day: float
    trained: int = 0
    promoted: int = 0
    in_service: int = 0
    """Machines with a version in service after this step's training."""
    errors_h: list[float] = field(default_factory=list)
    """Absolute RUL errors of the versions in service over the next step (near failures)."""
    test_errors_h: list[float] = field(default_factory=list)
    """The same over the fixed test span after the last step."""
    not_trained: list[str] = field(default_factory=list)

    @property
    def mae_h(self) -> float | None:
        return float(np.mean(self.errors_h)) if self.errors_h else None

    @property
    def test_mae_h(self) -> float | None:
        return float(np.mean(self.test_errors_h)) if self.test_errors_h else None


@dataclass
class Curve:
    scenario: str
    seed: int
    step_days: float
    window_h: float
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "seed": self.seed, "step_days": self.step_days,
            "window_h": self.window_h,
            "steps": [asdict(s) | {"mae_h": s.mae_h, "rows": len(s.errors_h), "errors_h": None,
                                   "test_mae_h": s.test_mae_h, "test_rows": len(s.test_errors_h),
                                   "test_errors_h": None} for s in self.steps],
        }  # fmt: skip


def learning_curve(
    config: GenbaConfig,
    rul: RulSettings,
    *,
    scenario: str = "wear",
    seed: int = 11,
    steps: int = 12,
    step_days: float = 7.0,
    window_h: float = 48.0,
    test_steps: int = 2,
) -> Curve:
    """Retrain at the end of every step, score the version in service on the next one."""
    curve = Curve(scenario, seed, step_days, window_h)
    clock = RealClock()
    test = TimeRange(T0_NS + int(steps * step_days * DAY_NS), T0_NS + int((steps + test_steps) * step_days * DAY_NS))  # fmt: skip
    with simulated(scenario, seed, (steps + test_steps) * step_days) as (sim, store, reg):
        paths = [m.path for m in sim.plant.machines]
        machines = [m for m in config.machine if matches(rul.machines, m.path) and m.path in paths]
        for k in range(1, steps + 1):
            now = T0_NS + int(k * step_days * DAY_NS)
            step = Step(k * step_days)
            nxt = TimeRange(now, now + int(step_days * DAY_NS))
            for machine in machines:
                try:
                    _, d = challenge(config, store, reg, clock, rul, machine, now)
                    step.trained += 1
                    step.promoted += d.promoted
                except GenbaError as e:
                    step.not_trained.append(f"{machine.path}: {str(e)[:80]}")
                v = in_service(store, rul.name, machine.path)
                if v is None:
                    continue
                step.in_service += 1
                model = RulModel.load(v.data())
                idx = paths.index(machine.path)
                wear = np.array([T0_NS + int(f.start_s * NS_PER_S) for f in sim.plant.failures if f.machine == idx and f.wear_out], dtype=np.int64)  # fmt: skip
                for span, out in ((nxt, step.errors_h), (test, step.test_errors_h)):
                    out += _errors(config, store, reg, clock, rul, machine, model, span, wear, window_h)  # fmt: skip
            curve.steps.append(step)
    return curve


def _errors(config: GenbaConfig, store: Store, reg: TagRegistry, clock: RealClock, rul: RulSettings, machine: MachineSettings, model: RulModel, span: TimeRange, wear: np.ndarray, window_h: float) -> list[float]:  # fmt: skip
    """Absolute RUL errors on the rows of ``span`` within ``window_h`` of a wear-out."""
    back = int(2 * rul.cap_h / 24 * DAY_NS)
    lives, *_ = read_lives(config, store, reg, clock, rul, machine, TimeRange(span.start_ns - back, span.end_ns))  # fmt: skip
    pred = model.predict(lives).rul_h
    truth = _truth(lives.t_ns, lives.run_h, wear)
    rows = (lives.t_ns >= span.start_ns) & ~np.isnan(pred) & (truth <= window_h)
    return list(np.abs(pred[rows] - truth[rows]).tolist())


def _truth(t_ns: np.ndarray, run_h: np.ndarray, wear_ns: np.ndarray) -> np.ndarray:
    """Running hours from each row to the next wear-out failure in the grid (inf: none)."""
    inside = (wear_ns > t_ns[0]) & (wear_ns <= t_ns[-1])
    wear_ns = wear_ns[inside]
    fail_h = run_h[np.minimum(np.searchsorted(t_ns, wear_ns, "left"), len(t_ns) - 1)]
    k = np.searchsorted(wear_ns, t_ns, "right")
    out = np.full(len(t_ns), np.inf)
    has = k < len(wear_ns)
    out[has] = fail_h[k[has]] - run_h[has]
    return out

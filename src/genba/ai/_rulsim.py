"""``genba ai evaluate rul``: remaining useful life on a simulated plant, against the
simulator's truth.

For each seed: the plant (the wear-heavy ``wear`` scenario unless told otherwise) runs ``days``
into a fresh DuckDB store, as a node stores it; each machine's RUL model is trained from that
store on the first ``train_days`` (:func:`genba.ai._rul.train_rul`, only what the historian
holds: states, reasons, signals) and predicts every row of the rest from the history before
it, as the node does. The truth is the simulator's own failure log, never shown to the model.

* **RUL error**: over the last ``window_h`` (48) running hours before each wear-out failure in
  the scored time, the predicted running hours against the true ones (truth under ``cap_h``
  there), as MAE and RMSE; **coverage**: the share of those rows whose 80 % interval holds
  the truth;
* **warnings**: "fails within ``horizon_h`` running hours", raised when the probability passes
  ``alarm_probability`` and cleared under half of it (ISA-18.2's deadband, as the node's
  alarm). **Precision**: the share of warnings raised that a wear-out failure follows within
  ``horizon_h`` running hours. **Recall**: the share of wear-out failures with a warning
  active at some time in their last ``horizon_h`` running hours, at least ``lead_h`` before
  the failure. Sudden failures (no warning by design) are counted apart and are not misses;
  a warning followed by a sudden failure alone is a false one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.ai._rul import WARNING_DEADBAND, RulModel, read_lives, train_rul
from genba.ai._simeval import ALARM_DEADBAND, DAY_S, T0_NS, onsets, simulated
from genba.clock import RealClock
from genba.config import GenbaConfig, RulSettings
from genba.errors import ConfigError
from genba.historian import TimeRange
from genba.paths import matches
from genba.types import NS_PER_S

F64 = npt.NDArray[np.float64]


@dataclass
class RulMachine:
    seed: int
    machine: str
    wear_outs: int
    """Wear-out failures whose last ``window_h`` running hours are all scored."""
    sudden: int
    abs_errors_h: list[float]
    sq_errors_h: list[float]
    covered: int
    rows: int
    warnings: int
    true_warnings: int
    warned: int
    """Wear-out failures (of those whose horizon lies in the scored time) warned of in time."""
    judged: int
    """Wear-out failures whose last ``horizon_h`` running hours lie in the scored time."""
    error: str = ""


@dataclass
class RulReport:
    scenario: str
    settings: dict[str, Any]
    days: float
    train_days: float
    window_h: float
    lead_h: float
    machines: list[RulMachine] = field(default_factory=list)

    def pooled(self, seed: int | None = None) -> dict[str, Any]:
        ms = [m for m in self.machines if seed is None or m.seed == seed]
        err = [e for m in ms for e in m.abs_errors_h]
        sq = [e for m in ms for e in m.sq_errors_h]
        rows = sum(m.rows for m in ms)
        warnings = sum(m.warnings for m in ms)
        judged = sum(m.judged for m in ms)
        return {
            "machines": len(ms),
            "trained": sum(not m.error for m in ms),
            "wear_outs": sum(m.wear_outs for m in ms),
            "sudden_failures": sum(m.sudden for m in ms),
            "mae_h": float(np.mean(err)) if err else None,
            "rmse_h": float(np.sqrt(np.mean(sq))) if sq else None,
            "coverage": sum(m.covered for m in ms) / rows if rows else None,
            "warnings": warnings,
            "precision": sum(m.true_warnings for m in ms) / warnings if warnings else None,
            "judged": judged,
            "recall": sum(m.warned for m in ms) / judged if judged else None,
        }

    def per_seed(self) -> list[dict[str, Any]]:
        return [{"seed": s, **self.pooled(s)} for s in sorted({m.seed for m in self.machines})]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "settings": self.settings, "days": self.days,
            "train_days": self.train_days, "window_h": self.window_h, "lead_h": self.lead_h,
            "pooled": self.pooled(), "seeds": self.per_seed(),
            "machines": [asdict(m) for m in self.machines],
        }  # fmt: skip


def evaluate_rul(
    config: GenbaConfig,
    rul: RulSettings,
    *,
    scenario: str = "wear",
    seeds: list[int],
    days: float = 90.0,
    train_days: float = 45.0,
    window_h: float = 48.0,
    lead_h: float = 1.0,
) -> RulReport:
    """Score ``rul`` on a simulated plant per seed (module docstring)."""
    if not 0 < train_days < days:
        raise ConfigError(f"train_days ({train_days}) must be more than 0 and under days ({days})")
    settings = {k: v for k, v in rul.model_dump().items() if k not in ("name", "machines")}
    report = RulReport(scenario, settings, days, train_days, window_h, lead_h)
    for seed in seeds:
        with simulated(scenario, seed, days) as (sim, store, reg):
            split = T0_NS + int(train_days * DAY_S * NS_PER_S)
            end = T0_NS + int(days * DAY_S * NS_PER_S)
            paths = [m.path for m in sim.plant.machines]
            for machine in config.machine:
                if not matches(rul.machines, machine.path) or machine.path not in paths:
                    continue
                idx = paths.index(machine.path)
                fails = [f for f in sim.plant.failures if f.machine == idx]
                wear = np.array([T0_NS + int(f.start_s * NS_PER_S) for f in fails if f.wear_out], dtype=np.int64)  # fmt: skip
                sudden = sum(not f.wear_out and T0_NS + f.start_s * NS_PER_S >= split for f in fails)  # fmt: skip
                # train on the first days only: the history the store had then
                t_rul = rul.model_copy(update={"train_days": train_days})
                clock = RealClock()
                try:
                    v = train_rul(config, store, reg, clock, t_rul, machine, split)
                except ConfigError:
                    raise
                except Exception as e:
                    report.machines.append(RulMachine(seed, machine.path, 0, sudden, [], [], 0, 0, 0, 0, 0, 0, str(e)))  # fmt: skip
                    continue
                model = RulModel.load(v.data())
                # the scored days, with the history before them that the features look back on
                span = TimeRange(split - int(rul.cap_h / 24 * 2 * DAY_S * NS_PER_S), end)
                lives, *_ = read_lives(config, store, reg, clock, rul, machine, span)
                est = model.predict(lives)
                report.machines.append(
                    _judge(seed, machine.path, lives.t_ns, lives.run_h, est.rul_h, est.low_h,
                           est.high_h, est.p_fail, wear, sudden, split, rul, window_h, lead_h)
                )  # fmt: skip
    return report


def _judge(seed: int, path: str, t_ns: npt.NDArray[np.int64], run_h: F64, rul_h: F64, low_h: F64, high_h: F64, p_fail: F64, wear_ns: npt.NDArray[np.int64], sudden: int, split: int, rul: RulSettings, window_h: float, lead_h: float) -> RulMachine:  # fmt: skip
    """One machine's estimates against the simulator's wear-out failures (module docstring)."""
    scored = t_ns >= split
    inside = (wear_ns > t_ns[0]) & (wear_ns <= t_ns[-1])
    # running hours at each failure: those before the first row at or after it
    fail_h = run_h[np.minimum(np.searchsorted(t_ns, wear_ns, "left"), len(t_ns) - 1)]
    wear_ns, fail_h = wear_ns[inside], fail_h[inside]
    nxt = np.searchsorted(wear_ns, t_ns, "right")
    truth = np.full(len(t_ns), np.nan)
    has = nxt < len(wear_ns)
    truth[has] = fail_h[nxt[has]] - run_h[has]
    first_h = float(run_h[np.argmax(scored)]) if scored.any() else np.inf
    # RUL error: rows in the last window_h before a failure whose window is all scored
    window_ok = np.zeros(len(t_ns), dtype=bool)
    window_ok[has] = fail_h[nxt[has]] - window_h >= first_h
    rows = scored & window_ok & (truth <= window_h) & ~np.isnan(rul_h)
    err = rul_h[rows] - truth[rows]
    covered = int(((low_h[rows] <= truth[rows]) & (truth[rows] <= high_h[rows])).sum())
    counted = int(sum(1 for h in fail_h if h - window_h >= first_h and np.isfinite(h)))
    # warnings
    z = np.where(scored, p_fail / rul.alarm_probability, np.nan)
    raised = onsets(z, WARNING_DEADBAND)
    active = _active(z, WARNING_DEADBAND)
    true_w = 0
    for i in np.flatnonzero(raised):
        true_w += bool(has[i] and truth[i] <= rul.horizon_h)
    judged = warned = 0
    for h in fail_h:
        if not np.isfinite(h) or h - rul.horizon_h < first_h:
            continue
        judged += 1
        before = scored & (run_h >= h - rul.horizon_h) & (run_h <= h - lead_h)
        warned += bool((active & before).any())
    return RulMachine(
        seed, path, counted, sudden, np.abs(err).tolist(), (err**2).tolist(), covered,
        int(rows.sum()), int(raised.sum()), true_w, warned, judged,
    )  # fmt: skip


def _active(z: F64, deadband: float = ALARM_DEADBAND) -> npt.NDArray[np.bool_]:
    """Where the alarm of :func:`~genba.ai._simeval.onsets` is active (it holds over NaN).

    >>> _active(np.array([0.5, 1.2, 0.95, np.nan, 0.8, 1.1])).astype(int).tolist()
    [0, 1, 1, 1, 0, 1]
    """
    out = np.zeros(len(z), dtype=bool)
    on = False
    for i in range(len(z)):
        if not np.isnan(z[i]):
            if not on and z[i] > 1.0:
                on = True
            elif on and z[i] < 1.0 - deadband:
                on = False
        out[i] = on
    return out

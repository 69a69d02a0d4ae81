"""``genba ai evaluate quality``: the reject-rate surrogate against the simulator, whose
reject probability is known exactly.

For each seed, the plant runs ``days`` while an operator moves each machine's setpoints every
``change_h`` hours. For the first ``train_share`` of the days they stay in a **visited** box —
temperature within ±4 °C of the machine's optimum, speed 80–95 % — and the model is trained on
those windows (:mod:`genba.ai._quality`, from the historian alone). For the rest, the
setpoints alternate between the visited box and an **unvisited** one (temperature 6–12 °C off
the optimum, or speed 65–78 %), never seen in training. Each later window is predicted and
judged against the truth — the simulator's reject probability at the window's setpoints and
time (its temperature optimum drifts, which no input shows):

* **MAE** of the rate, in percentage points; **calibration**: the mean predicted rate against
  the mean observed one;
* **coverage**: the share of windows whose true probability lies in the model's 80 % interval
  — near 80 % is honest; far under it, overconfident.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from genba.ai._quality import QualityModel, quality_windows
from genba.ai._simeval import DAY_S, T0_NS, simulated
from genba.historian import TimeRange
from genba.sim import Simulator
from genba.sim._plant import SPEED_EXPONENT
from genba.types import NS_PER_S


@dataclass
class QualityGroup:
    windows: int = 0
    abs_err_pp: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    covered: int = 0

    def summary(self) -> dict[str, Any]:
        n = self.windows
        return {
            "windows": n,
            "mae_pp": float(np.mean(self.abs_err_pp)) if n else None,
            "mean_predicted_pct": 100 * float(np.mean(self.predicted)) if n else None,
            "mean_observed_pct": 100 * float(np.mean(self.observed)) if n else None,
            "coverage": self.covered / n if n else None,
        }


@dataclass
class QualityReport:
    scenario: str
    days: float
    train_share: float
    seeds: list[int]
    groups: dict[str, QualityGroup] = field(default_factory=dict)
    dropped_resets: int = 0
    machines: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["groups"] = {k: g.summary() for k, g in self.groups.items()}
        return out


class Operator:
    """Moves each machine's setpoints: in the visited box before ``split_s``, then half the
    time in the unvisited one (module docstring); keeps what it did."""

    def __init__(self, seed: int, split_s: float) -> None:
        self.rng = random.Random(seed)
        self.split_s = split_s
        self.log: list[
            tuple[float, int, float, float, str]
        ] = []  # t_s, machine, temp, speed, group

    def __call__(self, sim: Simulator, t_s: float) -> None:
        rng = self.rng
        for m in sim.plant.machines:
            opt = m.p.temperature_opt_c
            group = "visited" if t_s < self.split_s or rng.random() < 0.5 else "unvisited"
            if group == "visited":
                temp, speed = opt + rng.uniform(-4, 4), rng.uniform(80, 95)
            elif rng.random() < 0.5:
                temp, speed = opt + rng.choice((-1, 1)) * rng.uniform(6, 12), rng.uniform(80, 95)
            else:
                temp, speed = opt + rng.uniform(-4, 4), rng.uniform(65, 78)
            sim.plant.write_setpoint(m.path, "temperature_sp", round(temp, 1))
            sim.plant.write_setpoint(m.path, "speed_sp", round(speed, 1))
            self.log.append((t_s, m.index, temp, speed, group))


def evaluate_quality(*, scenario: str = "demo", seeds: list[int], days: float = 14.0, train_share: float = 0.7, change_h: float = 2.0) -> QualityReport:  # fmt: skip
    """Train on the visited setpoints, judge on later visited and unvisited ones."""
    report = QualityReport(scenario, days, train_share, seeds, {"visited": QualityGroup(), "unvisited": QualityGroup()})  # fmt: skip
    split_s = days * train_share * DAY_S
    for seed in seeds:
        operator = Operator(seed, split_s)
        log = operator.log
        with simulated(scenario, seed, days, step_s=change_h * 3600, before=operator) as (sim, store, reg):  # fmt: skip
            split = T0_NS + int(split_s * NS_PER_S)
            end = T0_NS + int(days * DAY_S * NS_PER_S)
            for m in sim.plant.machines:
                report.machines.append(f"{seed}:{m.path}")
                train = quality_windows(store, reg, m.path, TimeRange(T0_NS, split))
                test = quality_windows(store, reg, m.path, TimeRange(split, end))
                report.dropped_resets += train.dropped_resets + test.dropped_resets
                model = QualityModel(seed).fit(train)
                rate, lo, hi = model.predict(test.x)
                mine = [e for e in log if e[1] == m.index]
                starts = np.array([e[0] for e in mine])
                for i, t_ns in enumerate(test.t_ns.tolist()):
                    t_s = (t_ns - T0_NS) / NS_PER_S
                    j = int(np.searchsorted(starts, t_s, "right")) - 1
                    _, _, temp, speed, group = mine[j]
                    if (t_s + 15 * 60) > (starts[j + 1] if j + 1 < len(starts) else np.inf):
                        continue  # the setpoints changed inside the window
                    p = _truth(m, temp, speed, t_s + 7.5 * 60)
                    g = report.groups[group]
                    g.windows += 1
                    g.abs_err_pp.append(100 * abs(float(rate[i]) - p))
                    g.predicted.append(float(rate[i]))
                    g.observed.append(float(test.rate[i]))
                    g.covered += int(lo[i] <= p <= hi[i])
    return report


def _truth(m: Any, temp: float, speed: float, t_s: float) -> float:
    """The simulator's reject probability at these setpoints and time (docs/simulator.md)."""
    s = speed / 100.0
    base = m.p.reject_rate + m.k_speed * s**SPEED_EXPONENT
    dt = (temp - m.temperature_opt(t_s)) / 5.0
    return float(min(base + 0.03 * dt * dt, 0.95))

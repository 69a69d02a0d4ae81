"""Ground truth: what really happened in a time range, computed from the model's own logs.

Definitions (docs/simulator.md, "Ground truth"), per machine over ``[start, end)``:

* all time; planned production time = all time − IDLE − PLANNED_STOP − the part of stops
  (DOWN, SETUP, STARVED, BLOCKED) the calendar does not plan (a breakdown running into a
  break is a loss only until the break begins, ISO 22400-2);
* run time = planned − DOWN − SETUP − STARVED − BLOCKED (it includes SMALL_STOP);
* net run time = Σ ideal cycle(product) × parts made; fully productive time = Σ ideal × good;
* availability = run / planned, performance = net run / run, quality = fully productive /
  net run, OEE = A × P × Q = fully productive / planned, TEEP = OEE × planned / all;
* losses in minutes: breakdowns (DOWN), setup and adjustments (SETUP), small stops
  (SMALL_STOP), reduced speed (run − small stops − net run: slow cycles and slow periods),
  start-up rejects and production rejects (ideal time of rejected parts), and
  starved/blocked (waiting on the neighbours) outside the six big losses.

Parts count when they complete. With these, planned − every loss = fully productive, exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genba.calendar import WORK
from genba.sim._logs import PART_GOOD, PART_STARTUP
from genba.sim._plant import SPEED_OPT
from genba.sim._reasons import Reason
from genba.sim._simulator import Simulator
from genba.states import MachineState as S
from genba.timeparse import format_time
from genba.types import NS_PER_S

_STOPS = [int(S.DOWN), int(S.SETUP), int(S.STARVED), int(S.BLOCKED)]


@dataclass
class MachineTruth:
    path: str
    seconds: dict[str, float]
    good: int
    rejects: int
    startup_rejects: int
    produced_by_product: dict[str, int]
    all_time_s: float
    planned_s: float
    run_s: float
    net_run_s: float
    fully_productive_s: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    teep: float | None
    losses_min: dict[str, float]
    energy_kwh: float
    optimum: dict[str, float]


@dataclass
class LineTruth:
    path: str
    finished: dict[str, int]
    material_kg: float
    costs: dict[str, float]
    revenue: float
    cost_per_good_unit: float | None
    margin: float


@dataclass
class GroundTruth:
    start_ns: int
    end_ns: int
    machines: dict[str, MachineTruth]
    lines: dict[str, LineTruth]
    failures: list[dict[str, Any]]
    timeline: pa.Table = field(repr=False)

    def to_files(self, folder: str | Path) -> list[Path]:
        """Write ``timeline.parquet``, ``failures.csv`` and ``summary.json`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.timeline, out / "timeline.parquet")
        header = "machine,start,end,reason,wear_out\n"
        rows = [
            f"{f['machine']},{f['start']},{f['end']},{f['reason']},{str(f['wear_out']).lower()}\n"
            for f in self.failures
        ]
        (out / "failures.csv").write_text(header + "".join(rows))
        summary = {
            "start": format_time(self.start_ns),
            "end": format_time(self.end_ns),
            "machines": {k: asdict(v) for k, v in self.machines.items()},
            "lines": {k: asdict(v) for k, v in self.lines.items()},
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        return [out / "timeline.parquet", out / "failures.csv", out / "summary.json"]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def truth(sim: Simulator, start_ns: int, end_ns: int) -> GroundTruth:
    """The ground truth of ``[start_ns, end_ns)``; the simulator must have run past it."""
    plant = sim.plant
    a, b = (start_ns - sim.t0_ns) / NS_PER_S, (end_ns - sim.t0_ns) / NS_PER_S
    if end_ns <= start_ns:
        raise ValueError(
            f"the range {format_time(start_ns)} .. {format_time(end_ns)} is empty; "
            "give an end after the start"
        )
    if a < sim.history_from_s:
        raise ValueError(
            f"the history before {format_time(sim.t0_ns + round(sim.history_from_s * NS_PER_S))} was "
            "forgotten (Simulator retain_s); ask for a later start"
        )
    if b > plant.now_s + 1e-9:
        raise ValueError(
            f"the simulator has run to {format_time(sim.now_ns())}; advance it past "
            f"{format_time(end_ns)} before asking for the truth up to there"
        )
    n = len(plant.machines)
    # -- state timeline -------------------------------------------------------------------
    log = plant.logs.state
    t, m, (st, rs) = log.columns(log.span(-1.0, b))
    before = t <= a
    first = np.full(n, -1, dtype=np.int64)
    np.maximum.at(first, m[before], np.flatnonzero(before))
    has = first >= 0
    inside = ~before
    ev_t = np.concatenate([np.full(int(has.sum()), a), t[inside]])
    ev_m = np.concatenate([np.flatnonzero(has), m[inside]])
    ev_s = np.concatenate([st[first[has]], st[inside]]).astype(np.int64)
    ev_r = np.concatenate([rs[first[has]], rs[inside]]).astype(np.int64)
    order = np.lexsort((ev_t, ev_m))
    ev_t, ev_m, ev_s, ev_r = ev_t[order], ev_m[order], ev_s[order], ev_r[order]
    ends = np.append(ev_t[1:], b)
    ends[np.append(ev_m[1:] != ev_m[:-1], True)] = b
    dur = ends - ev_t
    secs = np.zeros((n, 16))
    np.add.at(secs, (ev_m, ev_s), dur)
    # A stop's time where the calendar plans no production (a break, after the shift) is not
    # planned production time (ISO 22400-2): the loss ends where the break begins.
    off = np.zeros(len(ev_t))
    for seg in plant.calendar.segments(start_ns, end_ns):
        if seg.status != WORK:
            o0, o1 = (seg.start_ns - sim.t0_ns) / NS_PER_S, (seg.end_ns - sim.t0_ns) / NS_PER_S
            off += np.clip(np.minimum(ends, o1) - np.maximum(ev_t, o0), 0.0, None)
    off *= np.isin(ev_s, _STOPS)
    off_plan = np.zeros((n, 16))
    np.add.at(off_plan, (ev_m, ev_s), off)
    lost = secs - off_plan  # stop time inside planned production time
    timeline = pa.table(
        {
            "machine": pa.array([plant.machines[i].path for i in ev_m.tolist()]),
            "start_ns": sim.t0_ns + np.round(ev_t * NS_PER_S).astype(np.int64),
            "end_ns": sim.t0_ns + np.round(ends * NS_PER_S).astype(np.int64),
            "state": pa.array([S(s).name.lower() for s in ev_s.tolist()]),
            "reason": pa.array([Reason(r).name.lower() for r in ev_r.tolist()]),
        }
    )
    # -- parts ----------------------------------------------------------------------------
    _t_p, m_p, (flags, prod) = plant.logs.part.columns(plant.logs.part.span(a, b))
    flags_i, prod_i = flags.astype(np.int64), prod.astype(np.int64)
    good = (flags_i & PART_GOOD) > 0
    startup = (flags_i & PART_STARTUP) > 0
    n_prod = len(plant.products) + 1
    made = np.zeros((n, n_prod))
    good_n = np.zeros((n, n_prod))
    startup_rej = np.zeros((n, n_prod))
    np.add.at(made, (m_p, prod_i), 1)
    np.add.at(good_n, (m_p, prod_i), good)
    np.add.at(startup_rej, (m_p, prod_i), ~good & startup)
    ideal = (
        np.array([mm.p.ideal_cycle_s for mm in plant.machines])[:, None]
        * np.array(plant.cycle_factor)[None, :]
    )
    energy = _energy(sim, a, b)
    t_mid = (a + b) / 2

    machines: dict[str, MachineTruth] = {}
    for i, mach in enumerate(plant.machines):
        sec = {S(s).name.lower(): float(lost[i, s]) for s in S}
        all_s = b - a
        planned = all_s - sec["idle"] - sec["planned_stop"] - float(off_plan[i].sum())
        run = planned - sec["down"] - sec["setup"] - sec["starved"] - sec["blocked"]
        net = float((ideal[i] * made[i]).sum())
        fp = float((ideal[i] * good_n[i]).sum())
        su = float((ideal[i] * startup_rej[i]).sum())
        rejects_ideal = net - fp
        oee = _ratio(fp, planned)
        machines[mach.path] = MachineTruth(
            path=mach.path,
            seconds={S(s).name.lower(): float(secs[i, s]) for s in S},
            good=int(good_n[i].sum()),
            rejects=int(made[i].sum() - good_n[i].sum()),
            startup_rejects=int(startup_rej[i].sum()),
            produced_by_product={p.name: int(made[i, j + 1]) for j, p in enumerate(plant.products)},
            all_time_s=all_s,
            planned_s=planned,
            run_s=run,
            net_run_s=net,
            fully_productive_s=fp,
            availability=_ratio(run, planned),
            performance=_ratio(net, run),
            quality=_ratio(fp, net),
            oee=oee,
            teep=None if oee is None else oee * planned / all_s,
            losses_min={
                "breakdowns": sec["down"] / 60,
                "setup_adjustments": sec["setup"] / 60,
                "small_stops": sec["small_stop"] / 60,
                "reduced_speed": (run - sec["small_stop"] - net) / 60,
                "startup_rejects": su / 60,
                "production_rejects": (rejects_ideal - su) / 60,
                "starved_blocked": (sec["starved"] + sec["blocked"]) / 60,
            },
            energy_kwh=float(energy[i]),
            optimum={
                "temperature_sp": mach.temperature_opt(t_mid),
                "speed_sp": 100.0 * SPEED_OPT,
            },
        )
    lines = {ln.path: _line_truth(sim, ln.index, made, good_n, energy, a, b) for ln in plant.lines}
    failures = [
        {
            "machine": plant.machines[f.machine].path,
            "start": format_time(sim.t0_ns + round(f.start_s * NS_PER_S)),
            "end": format_time(sim.t0_ns + round(f.end_s * NS_PER_S)),
            "start_s": f.start_s,
            "end_s": f.end_s,
            "reason": f.reason.name.lower(),
            "wear_out": f.wear_out,
        }
        for f in plant.failures
        if a <= f.start_s < b
    ]
    return GroundTruth(start_ns, end_ns, machines, lines, failures, timeline)


def _energy(sim: Simulator, a: float, b: float) -> np.ndarray:
    """kWh per machine between the whole minutes at or before ``a`` and ``b``."""
    marks = sim.sampler.energy_at_minute
    lo, hi = int(a // 60), int(b // 60)
    if lo not in marks or hi not in marks:
        return np.full(len(sim.plant.machines), np.nan)
    return marks[hi] - marks[lo]


def _line_truth(
    sim: Simulator,
    index: int,
    made: np.ndarray,
    good: np.ndarray,
    energy: np.ndarray,
    a: float,
    b: float,
) -> LineTruth:
    plant = sim.plant
    line = plant.lines[index]
    members = [mm.index for mm in plant.machines if mm.line is line]
    first, last = members[0], members[-1]
    costs_cfg = plant.scenario.costs
    products = plant.products
    started = made[first, 1:]
    finished = good[last, 1:]
    worked_h = sum(
        (
            min(s.end_ns, sim.t0_ns + int(b * NS_PER_S))
            - max(s.start_ns, sim.t0_ns + int(a * NS_PER_S))
        )
        / NS_PER_S
        / 3600
        for s in plant.calendar.segments(
            sim.t0_ns + int(a * NS_PER_S), sim.t0_ns + int(b * NS_PER_S)
        )
        if s.status != "off"
    )
    costs = {
        "material": float(sum(started[j] * p.material_cost for j, p in enumerate(products))),
        "energy": float(np.nansum(energy[members]) * costs_cfg.energy_price_per_kwh),
        "labour": worked_h * costs_cfg.operators_per_line * costs_cfg.labour_rate_per_h,
        "machine_hours": worked_h * len(members) * costs_cfg.machine_rate_per_h,
    }
    total = sum(costs.values())
    revenue = float(sum(finished[j] * p.price for j, p in enumerate(products)))
    n_good = float(finished.sum())
    return LineTruth(
        path=line.path,
        finished={p.name: int(finished[j]) for j, p in enumerate(products)},
        material_kg=float(sum(started[j] * p.material_kg for j, p in enumerate(products))),
        costs=costs,
        revenue=revenue,
        cost_per_good_unit=total / n_good if n_good else None,
        margin=revenue - total,
    )

"""OEE, the time waterfall and the six big losses for many machines and periods at once.

Every state run is cut at the calendar's and the periods' boundaries (one ``repeat``), each
piece gets a loss class from (is the calendar working?, machine state) through a lookup
table, and durations and ideal-cycle-weighted counts are summed per (machine, period, class)
with ``bincount``. No Python loop touches a run or a part. Definitions: docs/kpi.md.

Time classes, and how they roll into the waterfall:

* ``unknown``: no trustworthy state sample (a data gap) — neither planned nor a loss;
* ``not_planned``: the calendar plans no production (off, break, holiday, planned stop) and
  the machine does not produce, or the machine reports itself idle / in a planned stop; a
  stop (down, setup, starved, blocked) that began in planned time stays a loss to its end;
* planned production time = all time − unknown − not planned;
* run time = planned − breakdowns (down) − setup − starved − blocked; small stops are run time;
* net run time = Σ ideal cycle(machine, product) × parts;
  fully productive time = Σ ideal cycle × good parts;
* reduced speed = run − small stops − net run; start-up and production rejects = ideal time
  of the rejected parts after / outside a setup's start-up window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.kpi._timeline import Counts, Energy, States
from genba.states import MachineState as S

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
NS = 1e9

CAL_OFF, CAL_WORK = 0, 1
CLASSES = (
    "unknown",
    "not_planned",
    "run",
    "small_stop",
    "down",
    "setup",
    "starved",
    "blocked",
)
_C = {name: i for i, name in enumerate(CLASSES)}
# (calendar working?, state) → class. Outside the calendar only production counts (overtime).
_CLASS = np.full((2, 16), _C["not_planned"], dtype=np.int64)
_CLASS[:, 0] = _C["unknown"]
for _work in (0, 1):
    _CLASS[_work, S.RUNNING] = _C["run"]
    _CLASS[_work, S.SMALL_STOP] = _C["small_stop"]
for _s, _name in [
    (S.DOWN, "down"),
    (S.SETUP, "setup"),
    (S.STARVED, "starved"),
    (S.BLOCKED, "blocked"),
]:
    _CLASS[CAL_WORK, _s] = _C[_name]


_CONTINUES = np.zeros(16, dtype=bool)
_CONTINUES[[S.DOWN, S.SETUP, S.STARVED, S.BLOCKED]] = True


def _working_at(calendar: Calendar, ts: I64) -> npt.NDArray[np.int64]:
    if len(calendar.start_ns) == 0:
        return np.ones(len(ts), dtype=np.int64)
    seg = np.clip(np.searchsorted(calendar.start_ns, ts, "right") - 1, 0, None)
    return calendar.working[seg]


@dataclass(frozen=True)
class Periods:
    """Half-open reporting periods, sorted and not overlapping (gaps between are allowed)."""

    start_ns: I64
    end_ns: I64

    def __len__(self) -> int:
        return len(self.start_ns)

    def index(self, ts: I64) -> I64:
        """The period holding each time, or -1."""
        p = np.searchsorted(self.start_ns, ts, "right") - 1
        ok = (p >= 0) & (ts < self.end_ns[np.maximum(p, 0)])
        return np.where(ok, p, -1)


@dataclass(frozen=True)
class Calendar:
    """Calendar segments as arrays: ``status`` is 1 where production is planned."""

    start_ns: I64
    end_ns: I64
    working: npt.NDArray[np.int64]
    scheduled: npt.NDArray[np.bool_]
    """Paid time: worked, breaks and planned stops (not off)."""


_ARRAYS = [
    "seconds",
    "all_s",
    "scheduled_s",
    "good",
    "reject",
    "startup_reject",
    "net_run_s",
    "fully_productive_s",
    "startup_reject_s",
    "energy_kwh",
    "energy_idle_kwh",
    "failures",
    "repair_s",
]


@dataclass(frozen=True)
class Figures:
    """Sums per (machine, period): seconds in each class, parts, ideal times, energy."""

    seconds: F64
    """(machines, periods, classes)."""
    all_s: F64
    scheduled_s: F64
    good: F64
    reject: F64
    startup_reject: F64
    net_run_s: F64
    fully_productive_s: F64
    startup_reject_s: F64
    energy_kwh: F64
    energy_idle_kwh: F64
    failures: F64
    repair_s: F64
    by_reason: ReasonTable | None = None
    """Loss time per (machine, class, reason), over all periods."""

    def time(self, cls: str) -> F64:
        return self.seconds[..., _C[cls]]

    @property
    def planned_s(self) -> F64:
        return self.all_s - self.time("unknown") - self.time("not_planned")

    @property
    def run_s(self) -> F64:
        return self.time("run") + self.time("small_stop")

    def sum(self, axis: int) -> Figures:
        """Add up machines (axis 0) or periods (axis 1), keeping the dimension."""
        return Figures(**{k: getattr(self, k).sum(axis=axis, keepdims=True) for k in _ARRAYS})

    def take(self, machines: npt.NDArray[np.intp]) -> Figures:
        return Figures(**{k: getattr(self, k)[machines] for k in _ARRAYS})

    def take_period(self, p: int) -> Figures:
        return Figures(**{k: getattr(self, k)[:, p : p + 1] for k in _ARRAYS})


@dataclass(frozen=True)
class ReasonTable:
    """Seconds and events per (machine, class, reason code) of the stops in a span."""

    machine: npt.NDArray[np.int64]
    cls: npt.NDArray[np.int64]
    reason: npt.NDArray[np.int64]
    seconds: F64


def _pieces(start: I64, end: I64, cuts: I64) -> tuple[npt.NDArray[np.intp], I64, I64]:
    """Cut each ``[start, end)`` at the sorted ``cuts`` inside it: (row, piece start, end)."""
    i0 = np.searchsorted(cuts, start, "right")
    i1 = np.searchsorted(cuts, end, "left")
    reps = np.maximum(i1 - i0, 0) + 1
    row = np.repeat(np.arange(len(start)), reps)
    k = np.arange(len(row)) - np.repeat(np.cumsum(reps) - reps, reps)
    g = cuts if len(cuts) else np.zeros(1, dtype=np.int64)
    last = k == reps[row] - 1
    p_start = np.where(k == 0, start[row], g[np.clip(i0[row] + k - 1, 0, len(g) - 1)])
    p_end = np.where(last, end[row], g[np.clip(i0[row] + k, 0, len(g) - 1)])
    return row, p_start, p_end


def compute(
    states: States,
    counts: Counts,
    energy: Energy,
    *,
    n_machines: int,
    ideal_s: F64,
    calendar: Calendar,
    periods: Periods,
) -> Figures:
    """Sum the waterfall of each machine and period. ``ideal_s[m, k]`` is the ideal cycle of
    machine ``m`` for product index ``k`` (0: no product known)."""
    M, P, C = n_machines, len(periods), len(CLASSES)
    cuts = np.unique(
        np.concatenate([calendar.start_ns, calendar.end_ns, periods.start_ns, periods.end_ns])
    )
    row, a, b = _pieces(states.start_ns, states.end_ns, cuts)
    working = _working_at(calendar, a)
    # A stop that began in planned time counts in full, also where it runs into a break or
    # past the shift: the machine was being repaired or set up, not resting.
    began = _working_at(calendar, states.start_ns)[row]
    working = np.where(_CONTINUES[states.state[row]], working | began, working)
    cls = _CLASS[working, states.state[row]]
    p = periods.index(a)
    ok = p >= 0
    m = states.machine[row]
    dur = (b - a) / NS
    flat = (m[ok] * P + p[ok]) * C + cls[ok]
    seconds = np.bincount(flat, weights=dur[ok], minlength=M * P * C).reshape(M, P, C)
    codes, r_inv = np.unique(states.reason[row[ok]], return_inverse=True)
    key = (m[ok].astype(np.int64) * C + cls[ok]) * max(len(codes), 1) + r_inv
    u_key, u_inv = np.unique(key, return_inverse=True)
    r_sec = np.bincount(u_inv, weights=dur[ok])
    rc = max(len(codes), 1)
    by_reason = ReasonTable(
        u_key // rc // C, u_key // rc % C, codes[u_key % rc].astype(np.int64), r_sec
    )

    def per_mp(mach: npt.NDArray[np.int32], ts: I64, w: F64) -> F64:
        pi = periods.index(ts)
        sel = pi >= 0
        idx = mach[sel] * P + pi[sel]
        return np.bincount(idx, weights=w[sel], minlength=M * P).reshape(M, P)

    ideal = ideal_s[counts.machine, counts.product]
    good, reject = counts.good, counts.reject
    # A failure is a run of DOWN: count it where it starts (the first run of a machine in
    # the span starts a failure too).
    st = states.state
    down = st == S.DOWN
    starts_run = np.ones(len(st), dtype=bool)
    starts_run[1:] = (st[:-1] != S.DOWN) | (states.machine[1:] != states.machine[:-1])
    fail = down & starts_run
    run_id = np.cumsum(fail) - 1
    repair = np.bincount(
        run_id[down], weights=(states.end_ns[down] - states.start_ns[down]) / NS,
        minlength=int(fail.sum()),
    )  # fmt: skip
    all_s = np.broadcast_to(((periods.end_ns - periods.start_ns) / NS)[None, :], (M, P))
    p_cuts = np.unique(np.concatenate([periods.start_ns, periods.end_ns]))
    sch_row, sa, sb = _pieces(calendar.start_ns, calendar.end_ns, p_cuts)
    sp = periods.index(sa)
    sel = (sp >= 0) & calendar.scheduled[sch_row]
    sched = np.bincount(sp[sel], weights=((sb - sa) / NS)[sel], minlength=P)
    return Figures(
        seconds=seconds,
        all_s=np.array(all_s, dtype=float),
        scheduled_s=np.broadcast_to(sched[None, :], (M, P)).astype(float),
        good=per_mp(counts.machine, counts.ts_ns, good),
        reject=per_mp(counts.machine, counts.ts_ns, reject),
        startup_reject=per_mp(counts.machine, counts.ts_ns, counts.startup_reject),
        net_run_s=per_mp(counts.machine, counts.ts_ns, ideal * (good + reject)),
        fully_productive_s=per_mp(counts.machine, counts.ts_ns, ideal * good),
        startup_reject_s=per_mp(counts.machine, counts.ts_ns, ideal * counts.startup_reject),
        energy_kwh=per_mp(energy.machine, energy.ts_ns, energy.kwh),
        energy_idle_kwh=per_mp(energy.machine, energy.ts_ns, energy.kwh * ~energy.producing),
        failures=per_mp(states.machine[fail], states.start_ns[fail], np.ones(int(fail.sum()))),
        repair_s=per_mp(states.machine[fail], states.start_ns[fail], repair),
        by_reason=by_reason,
    )

"""OEE, the time waterfall and the six big losses for many machines and periods at once.

Every state run is cut at the calendar's and the periods' boundaries (one ``repeat``), each
piece gets a loss class from (is the calendar working?, machine state) through a lookup
table, and durations and ideal-cycle-weighted counts are summed per (machine, period, class)
with ``bincount``. No Python loop touches a run or a part. Definitions: docs/kpi.md.

Time classes, and how they roll into the waterfall:

* ``unknown``: no trustworthy state sample (a stale mark, no data) while the calendar plans
  production — neither planned nor a loss; time the calendar does not plan is not planned,
  data or not;
* ``not_planned``: the calendar plans no production (off, break, holiday, planned stop) and
  the machine does not produce, or the machine reports itself idle / in a planned stop; a
  stop (down, setup, starved, blocked) that runs into a break is a loss only until the break
  begins (ISO 22400-2: a break is not planned production time);
* planned production time = all time − unknown − not planned;
* run time = planned − breakdowns (down) − setup − starved − blocked; small stops are run time;
* net run time = Σ ideal cycle(machine, product) × parts;
  fully productive time = Σ ideal cycle × good parts;
* reduced speed = run − small stops − net run; start-up and production rejects = ideal time
  of the rejected parts after / outside a setup's start-up window.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.kpi._timeline import Counts, Energy, States, holding
from genba.states import MachineState as S
from genba.types import NS_PER_S

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

CAL_WORK = 1  # Calendar.working: production planned
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
_CLASS[CAL_WORK, 0] = _C["unknown"]
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


def _sum(idx: I64, weights: F64, n: int) -> F64:
    """``bincount`` with float sums (typed as such)."""
    return np.asarray(np.bincount(idx, weights=weights, minlength=n), dtype=np.float64)


def slot_of(machine: npt.NDArray[np.int32], ts: I64, cuts: I64) -> npt.NDArray[np.intp]:
    """``searchsorted(cuts, ts, "right")``: how many of the sorted ``cuts`` are at or before
    each time. For many events a machine, sorted by machine, then time (as loaded), in
    linear time: each machine's block is cut at the cuts, not each event searched for.

    >>> m, t = np.repeat([0, 1], 50), np.tile(np.arange(50), 2)
    >>> slot_of(m, t, np.array([5, 8]))[[0, 5, 7, 8, 49, 50, 99]].tolist()
    [0, 1, 1, 2, 2, 0, 2]
    """
    n = len(ts)
    if n == 0 or len(cuts) == 0:
        return np.zeros(n, dtype=np.intp)
    new_machine = machine[1:] != machine[:-1]
    change = np.flatnonzero(new_machine) + 1
    if n < 20 * len(cuts) * (len(change) + 1) or not ((np.diff(ts) >= 0) | new_machine).all():
        # few events a machine between the cuts (or not in order): search each one
        return np.searchsorted(cuts, ts, "right")
    bounds = np.concatenate([[0], change, [n]]).tolist()
    out = np.empty(n, dtype=np.intp)
    slots = np.arange(len(cuts) + 1)
    for a, z in itertools.pairwise(bounds):
        pos = np.searchsorted(ts[a:z], cuts, "left")  # events before each cut
        out[a:z] = np.repeat(slots, np.diff(pos, prepend=0, append=z - a))
    return out


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
        return holding(self.start_ns, self.end_ns, ts)


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
    """Scheduled (paid) time of the calendar for which the machine has data."""
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

    @staticmethod
    def add(parts: list[Figures]) -> Figures:
        """Figures of several lines (each summed to one row) added up."""
        return Figures(**{k: np.sum([getattr(f, k) for f in parts], axis=0) for k in _ARRAYS})

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


def _slots(cuts: I64, calendar: Calendar, periods: Periods) -> tuple[I64, I64, I64]:
    """For each slot between consecutive ``cuts`` (slot j is ``[cuts[j-1], cuts[j])``, slot 0
    before the first cut): is the calendar working, which period holds it (-1: none), and is
    it scheduled (paid) time."""
    left = np.append(cuts[:1] - 1, cuts) if len(cuts) else np.zeros(1, dtype=np.int64)
    if len(calendar.start_ns):
        seg = np.clip(np.searchsorted(calendar.start_ns, left, "right") - 1, 0, None)
        sched = calendar.scheduled[seg].astype(np.int64)
    else:
        sched = np.ones(len(left), dtype=np.int64)
    return _working_at(calendar, left), periods.index(left), sched


def _by_reason(
    key: I64, reason: npt.NDArray[np.int32], dur: F64, M: int, P: int, C: int
) -> ReasonTable:
    """Seconds per (machine, class, reason) from the (machine, period, class) bin ``key`` of
    each piece (``M * P * C``: in no period); dense counting when codes are small."""
    spill = M * P * C
    lo, hi = (int(reason.min()), int(reason.max())) if len(reason) else (0, 0)
    if lo >= 0 and hi < 64:
        R = hi + 1
        sums = _sum(key * R + reason, dur, (spill + 1) * R)
        mcr = sums[: spill * R].reshape(M, P, C, R).sum(axis=1)
        m, c, r = np.nonzero(mcr)
        return ReasonTable(m, c, r, mcr[m, c, r])
    kept = key < spill
    key, reason, dur = key[kept], reason[kept], dur[kept]
    codes, r_inv = np.unique(reason, return_inverse=True)
    rc = len(codes)
    mc = key // (P * C) * C + key % C
    u_key, u_inv = np.unique(mc * rc + r_inv, return_inverse=True)
    return ReasonTable(
        u_key // rc // C, u_key // rc % C, codes[u_key % rc].astype(np.int64),
        _sum(u_inv, dur, 0),
    )  # fmt: skip


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
    slot_work, slot_period, slot_sched = _slots(cuts, calendar, periods)
    # One lookup gives a piece's (period, class) bin from (slot, calendar working?, state);
    # pieces in no period land in a spill bin past the end.
    n_slots = len(slot_work)
    spill = M * P * C
    pc = np.where(slot_period >= 0, slot_period * C, spill)[:, None, None] + _CLASS[None, :, :]
    pc = np.where(slot_period[:, None, None] >= 0, pc, spill).reshape(-1)  # (slot, work, state)
    first_lut = pc.reshape(n_slots, 2, 16)[np.arange(n_slots), slot_work].reshape(-1)
    # Two searchsorted per run. Every run's first piece ends at the first cut inside it (if
    # any); only the few runs crossing a cut add further pieces.
    s0, e0, st0 = states.start_ns, states.end_ns, states.state.astype(np.int64)
    i0 = np.searchsorted(cuts, s0, "right")
    next_cut = np.append(cuts, np.iinfo(np.int64).max)[i0]
    crossing = np.flatnonzero(next_cut < e0)
    first_end = e0.copy()
    first_end[crossing] = next_cut[crossing]
    row_x, a_x, b_x = _pieces(next_cut[crossing], e0[crossing], cuts)
    row_x = crossing[row_x]
    slot_x = np.searchsorted(cuts, a_x, "right")
    st_x = st0[row_x]
    work_x = slot_work[slot_x]
    mpc = states.machine.astype(np.int64) * (P * C)
    key = np.concatenate(
        [mpc + first_lut[i0 * 16 + st0], mpc[row_x] + pc[(slot_x * 2 + work_x) * 16 + st_x]]
    )
    key = np.minimum(key, spill)  # a spilled piece of machine m > 0 stays in the spill bin
    dur = np.concatenate([first_end - s0, b_x - a_x]) / NS_PER_S
    seconds = _sum(key, dur, spill + 1)[:spill]
    reason = np.concatenate([states.reason, states.reason[row_x]])
    by_reason = _by_reason(key, reason, dur, M, P, C)
    # Scheduled time with no data is not paid for in the figures: we do not know it was worked.
    unk0, unk_x = np.flatnonzero(st0 == 0), np.flatnonzero(st_x == 0)
    u_slot = np.concatenate([i0[unk0], slot_x[unk_x]])
    u_m = np.concatenate([states.machine[unk0], states.machine[row_x[unk_x]]]).astype(np.int64)
    u_p = slot_period[u_slot]
    u_keep = (u_p >= 0) & (slot_sched[u_slot] == 1)
    u_dur = np.concatenate([first_end[unk0] - s0[unk0], b_x[unk_x] - a_x[unk_x]]) / NS_PER_S
    unknown_sched = _sum(u_m[u_keep] * P + u_p[u_keep], u_dur[u_keep], M * P).reshape(M, P)

    def period_of(mach: npt.NDArray[np.int32], ts: I64) -> I64:
        return slot_period[slot_of(mach, ts, cuts)]

    def summer(mach: npt.NDArray[np.int32], ts: I64) -> Callable[[F64], F64]:
        pi = period_of(mach, ts)
        sel = pi >= 0
        idx = mach[sel].astype(np.int64) * P + pi[sel]
        return lambda w: _sum(idx, w[sel], M * P).reshape(M, P)

    # Parts summed per (machine, period, product), then weighted by the ideal cycles.
    K = ideal_s.shape[1]
    ci = period_of(counts.machine, counts.ts_ns)
    ck = np.where(ci >= 0, (counts.machine * P + ci) * K + counts.product, M * P * K)
    n = M * P * K + 1

    def per_product(w: F64) -> F64:
        return _sum(ck, w, n)[:-1].reshape(M, P, K)

    good, reject, su = (per_product(w) for w in (counts.good, counts.reject, counts.startup_reject))
    ideal = ideal_s[:, None, :]
    ei = period_of(energy.machine, energy.ts_ns)
    ek = np.where(ei >= 0, (energy.machine * P + ei) * 2 + energy.producing, M * P * 2)
    kwh = _sum(ek, energy.kwh, M * P * 2 + 1)[:-1].reshape(M, P, 2)
    # A failure is a run of DOWN: count it where it starts (the first run of a machine in
    # the span starts a failure too).
    st_all = states.state
    down = st_all == S.DOWN
    starts_run = np.ones(len(st_all), dtype=bool)
    starts_run[1:] = (st_all[:-1] != S.DOWN) | (states.machine[1:] != states.machine[:-1])
    fail = down & starts_run
    run_id = np.cumsum(fail) - 1
    repair = _sum(run_id[down], (e0[down] - s0[down]) / NS_PER_S, int(fail.sum()))
    by_failure = summer(states.machine[fail], s0[fail])
    all_s = np.broadcast_to(((periods.end_ns - periods.start_ns) / NS_PER_S)[None, :], (M, P))
    p_cuts = np.unique(np.concatenate([periods.start_ns, periods.end_ns]))
    sch_row, sa, sb = _pieces(calendar.start_ns, calendar.end_ns, p_cuts)
    sp = periods.index(sa)
    sel = (sp >= 0) & calendar.scheduled[sch_row]
    sched = _sum(sp[sel], ((sb - sa) / NS_PER_S)[sel], P)
    return Figures(
        seconds=seconds.reshape(M, P, C),
        all_s=np.array(all_s, dtype=float),
        scheduled_s=sched[None, :] - unknown_sched,
        good=good.sum(axis=2),
        reject=reject.sum(axis=2),
        startup_reject=su.sum(axis=2),
        net_run_s=(ideal * (good + reject)).sum(axis=2),
        fully_productive_s=(ideal * good).sum(axis=2),
        startup_reject_s=(ideal * su).sum(axis=2),
        energy_kwh=kwh.sum(axis=2),
        energy_idle_kwh=kwh[..., 0],
        failures=by_failure(np.ones(int(fail.sum()))),
        repair_s=by_failure(repair),
        by_reason=by_reason,
    )

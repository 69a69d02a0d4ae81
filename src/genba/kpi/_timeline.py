"""From a machine's samples to its state timeline and counted parts, vectorised.

A state sample holds until the next sample while its source is alive. Time becomes
*unknown* — never running — where the store holds a stale mark (a BAD sample: the connector
lost its source, a Sparkplug death, an OPC UA bad status, the node stopped), after
``until_ns`` (the newest time the node can vouch for), and, where ``max_gap_ns`` is given,
once a sample is older than that. Counters become increments: a drop is a reset (the new
value was counted from zero) or, with ``counter_max``, a rollover; an increment across
unknown time is not attributed (its parts are reported as ``unattributed``). A part counted
by a sample at ``t`` completed in the interval before ``t``, so it is placed at ``t − 1 ns``.

>>> s = np.array([0, 1, 2, 3, 4], dtype=np.int64) * 10**9
>>> st = track_states(s, np.array([1, 1, 7, 7, 1.0]), None, span=(0, 6 * 10**9))
>>> st.start_ns.tolist(), st.state.tolist()
([0, 2000000000, 4000000000], [1, 7, 1])
>>> stale = track_states(s, np.array([1, 1, np.nan, 7, 1.0]), None, span=(0, 6 * 10**9))
>>> stale.start_ns.tolist(), stale.state.tolist()  # a stale mark at 2 s: unknown until 3 s
([0, 2000000000, 3000000000, 4000000000], [1, 0, 7, 1])
>>> counter_increments(np.array([10, 11, 2, 5.0]), counter_max=0).tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from genba.states import MachineState as S

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
UNKNOWN = 0
"""State code of time with no trustworthy sample."""
T = TypeVar("T")


def _concat(cls: type[T], parts: list[T], dtypes: dict[str, type]) -> T:
    """Rows of several machines' columns, one after the other (an empty table when none)."""
    if not parts:
        return cls(*(np.zeros(0, dtype=dt) for dt in dtypes.values()))
    return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in dtypes))


@dataclass(frozen=True)
class States:
    """State runs of one or more machines: ``[start_ns, end_ns)``, sorted by machine, time."""

    machine: npt.NDArray[np.int32]
    start_ns: I64
    end_ns: I64
    state: npt.NDArray[np.int8]
    reason: npt.NDArray[np.int32]
    operator: npt.NDArray[np.bool_]
    """The reason was entered by an operator (``POST /api/downtime/{id}/reason``)."""

    def __len__(self) -> int:
        return len(self.start_ns)

    @staticmethod
    def concat(parts: list[States]) -> States:
        return _concat(States, parts, _STATE_DTYPES)


_STATE_DTYPES: dict[str, type] = {
    "machine": np.int32, "start_ns": np.int64, "end_ns": np.int64, "state": np.int8,
    "reason": np.int32, "operator": np.bool_,
}  # fmt: skip


@dataclass(frozen=True)
class Counts:
    """Counted parts: at ``ts_ns`` (completion), of product index ``product``."""

    machine: npt.NDArray[np.int32]
    ts_ns: I64
    product: npt.NDArray[np.int32]
    good: F64
    reject: F64
    startup_reject: F64

    @staticmethod
    def concat(parts: list[Counts]) -> Counts:
        return _concat(Counts, parts, _COUNT_DTYPES)

    def take(self, rows: npt.NDArray[np.bool_]) -> Counts:
        """The rows where ``rows`` is True."""
        return Counts(*(getattr(self, name)[rows] for name in _COUNT_DTYPES))


_COUNT_DTYPES: dict[str, type] = {
    "machine": np.int32, "ts_ns": np.int64, "product": np.int32, "good": np.float64,
    "reject": np.float64, "startup_reject": np.float64,
}  # fmt: skip


@dataclass(frozen=True)
class Energy:
    """Energy drawn (kWh) in the interval ending at ``ts_ns``, and whether it was producing."""

    machine: npt.NDArray[np.int32]
    ts_ns: I64
    kwh: F64
    producing: npt.NDArray[np.bool_]

    @staticmethod
    def concat(parts: list[Energy]) -> Energy:
        return _concat(Energy, parts, _ENERGY_DTYPES)


_ENERGY_DTYPES: dict[str, type] = {
    "machine": np.int32,
    "ts_ns": np.int64,
    "kwh": np.float64,
    "producing": np.bool_,
}


def holding(start_ns: I64, end_ns: I64, ts: I64) -> I64:
    """Index of the interval ``[start_ns[i], end_ns[i])`` (sorted, not overlapping) that holds
    each time, or -1."""
    idx = np.searchsorted(start_ns, ts, "right") - 1
    if len(start_ns) == 0:
        return np.full(len(ts), -1, dtype=np.int64)
    return np.where((idx >= 0) & (ts < end_ns[np.maximum(idx, 0)]), idx, -1)


def _runs(
    start: I64, end: I64, state: npt.NDArray[np.int8], reason: npt.NDArray[np.int32]
) -> tuple[I64, I64, npt.NDArray[np.int8], npt.NDArray[np.int32]]:
    """Merge neighbours with the same state and reason (contiguous intervals)."""
    if len(start) == 0:
        return start, end, state, reason
    new = np.ones(len(start), dtype=bool)
    new[1:] = (state[1:] != state[:-1]) | (reason[1:] != reason[:-1]) | (start[1:] != end[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(start)) - 1
    return start[first], end[last], state[first], reason[first]


def track_states(
    ts: I64,
    state: F64,
    reason: F64 | None,
    *,
    span: tuple[int, int],
    max_gap_ns: int | None = None,
    last_ns: I64 | None = None,
    until_ns: int | None = None,
    debounce_ns: int = 0,
    small_stop_ns: int = 0,
    machine: int = 0,
) -> States:
    """State runs over ``span`` from state samples (genba codes, already mapped; NaN: a stale
    mark, unknown until the next sample) at ``ts``, with the reason at the same times
    (``None``: no reason). Samples may come as runs (:meth:`genba.historian.Store.runs`):
    ``last_ns`` is then the last sample of each run. The last sample holds to the span's end
    or ``until_ns``, whichever is first; with ``max_gap_ns``, no sample holds longer."""
    a, b = span
    last = ts if last_ns is None else last_ns
    unknown = np.isnan(state)
    st = np.where(unknown, UNKNOWN, state).astype(np.int8)
    rs_f = reason if reason is not None else np.zeros(len(ts))
    rs = np.where(unknown, 0, np.nan_to_num(rs_f)).astype(np.int32)
    nxt = np.append(ts[1:], b)
    hold = nxt.copy()
    if max_gap_ns is not None:
        hold = np.minimum(hold, last + max_gap_ns)
    if until_ns is not None and len(ts):
        hold[-1] = min(hold[-1], max(until_ns, int(last[-1])))
    gap = hold < nxt
    first = ts[0] if len(ts) else b
    starts = np.concatenate([[a], ts, hold[gap]])
    ends = np.concatenate([[first], hold, nxt[gap]])
    states = np.concatenate([[UNKNOWN], st, np.full(int(gap.sum()), UNKNOWN)]).astype(np.int8)
    reasons = np.concatenate([[0], rs, np.zeros(int(gap.sum()))]).astype(np.int32)
    order = np.argsort(starts, kind="stable")
    starts, ends = np.clip(starts[order], a, b), np.clip(ends[order], a, b)
    states, reasons = states[order], reasons[order]
    ok = ends > starts
    s0, e0, st0, rs0 = _runs(starts[ok], ends[ok], states[ok], reasons[ok])
    if debounce_ns > 0 and len(s0) > 1:
        # unknown time is never merged away: nobody knows what the machine did then
        short = ((e0 - s0) < debounce_ns) & (st0 != UNKNOWN)
        short[0] = False
        src = np.maximum.accumulate(np.where(short, 0, np.arange(len(s0))))
        s0, e0, st0, rs0 = _runs(s0, e0, st0[src], rs0[src])
    if small_stop_ns > 0:
        brief = (st0 == S.DOWN) & ((e0 - s0) < small_stop_ns)
        st0 = np.where(brief, np.int8(S.SMALL_STOP), st0).astype(np.int8)
        s0, e0, st0, rs0 = _runs(s0, e0, st0, rs0)
    n = len(s0)
    return States(np.full(n, machine, dtype=np.int32), s0, e0, st0, rs0, np.zeros(n, dtype=bool))


def rules_state(run: F64 | None, speed: F64 | None, min_speed: float) -> npt.NDArray[np.float64]:
    """Rules mode: RUNNING while the run signal is on (and the speed above ``min_speed``),
    DOWN otherwise; NaN where a signal is missing."""
    on: npt.NDArray[np.float64] | None = None
    if run is not None:
        on = np.where(np.isnan(run), np.nan, (run != 0).astype(float))
    if speed is not None:
        fast = np.where(np.isnan(speed), np.nan, (speed > min_speed).astype(float))
        on = fast if on is None else on * fast
    if on is None:
        raise ValueError("rules mode needs a run or a speed signal")
    return np.where(np.isnan(on), np.nan, np.where(on > 0, float(S.RUNNING), float(S.DOWN)))


def counter_increments(values: F64, *, counter_max: int) -> F64:
    """Parts counted between consecutive counter samples: a drop is a rollover (with
    ``counter_max``, when the counter was past half its range) or else a reset to zero."""
    inc = np.diff(values)
    drop = inc < 0
    if drop.any():
        prev, now = values[:-1], values[1:]
        if counter_max > 0:
            roll = drop & (prev > counter_max / 2)
            inc = np.where(roll, inc + counter_max + 1, inc)
            drop = drop & ~roll
        inc = np.where(drop, now, inc)
    return inc


def apply_operator_reasons(states: States, ts: I64, codes: F64) -> States:
    """Reasons entered by operators: a sample at ``t`` sets the reason of the run holding
    ``t`` (the latest entry wins)."""
    if len(ts) == 0 or len(states) == 0:
        return states
    idx = holding(states.start_ns, states.end_ns, ts)
    ok = (idx >= 0) & ~np.isnan(codes)
    reason, operator = states.reason.copy(), states.operator.copy()
    reason[idx[ok]] = codes[ok].astype(np.int32)
    operator[idx[ok]] = True
    return States(states.machine, states.start_ns, states.end_ns, states.state, reason, operator)


def state_at(states: States, ts: I64) -> npt.NDArray[np.int8]:
    """The state of one machine's runs at each time (UNKNOWN outside them)."""
    idx = holding(states.start_ns, states.end_ns, ts)
    inside = idx >= 0
    out = np.full(len(ts), UNKNOWN, dtype=np.int8)
    out[inside] = states.state[idx[inside]]
    return out


def startup_mask(states: States, ts: I64, total: F64, parts: int) -> npt.NDArray[np.bool_]:
    """Which count events (time-sorted, ``total`` parts each) fall among the first ``parts``
    parts after each setup of one machine."""
    mask = np.zeros(len(ts), dtype=bool)
    if parts <= 0 or len(ts) == 0 or len(states) < 2:
        return mask
    st = states.state
    ends = states.end_ns[:-1][(st[:-1] == S.SETUP) & (st[1:] != S.SETUP)]
    if len(ends) == 0:
        return mask
    cum = np.cumsum(total)
    j0 = np.searchsorted(ts, ends, "right")  # the first part after each setup
    j0 = j0[j0 < len(ts)]  # a setup with no parts after it yet marks nothing
    c0 = np.where(j0 > 0, cum[np.maximum(j0 - 1, 0)], 0.0)
    j1 = np.minimum(np.searchsorted(cum, c0 + parts, "left"), len(ts) - 1)
    diff = np.zeros(len(ts) + 1, dtype=np.int64)
    np.add.at(diff, j0, 1)
    np.add.at(diff, j1 + 1, -1)
    return np.cumsum(diff[:-1]) > 0

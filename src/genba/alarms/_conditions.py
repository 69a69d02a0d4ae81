"""Alarm conditions over a tag's samples, vectorised per batch, with state carried across.

Each condition turns time-ordered samples into the times its condition becomes active or
inactive. Limits use a deadband (ISA-18.2 §11.5): a high alarm is active above the limit and
clears only at or below limit − deadband, so a value chattering around the limit raises one
alarm, not dozens.

>>> c = Limit(limit=80.0, deadband=2.0, high=True)
>>> ts = np.arange(6, dtype=np.int64)
>>> c.update(ts, np.array([79.0, 81.0, 79.5, 80.5, 77.0, 78.5]))
[(1, True), (4, False)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.types import NS_PER_S

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Change = tuple[int, bool]


def _hysteresis(
    on: npt.NDArray[np.bool_], off: npt.NDArray[np.bool_], prev: bool
) -> npt.NDArray[np.bool_]:
    """Active where ``on``, inactive where ``off``, else as before (starting from ``prev``)."""
    ev = np.where(on, 1, np.where(off, 0, -1))
    idx = np.where(ev >= 0, np.arange(len(ev)), -1)
    idx = np.maximum.accumulate(idx) if len(idx) else idx
    held = np.where(idx >= 0, ev[np.maximum(idx, 0)], int(prev))
    return held.astype(bool)


def _changes(ts: I64, state: npt.NDArray[np.bool_], prev: bool) -> list[Change]:
    full = np.concatenate([[prev], state])
    at = np.flatnonzero(full[1:] != full[:-1])
    return [(int(ts[i]), bool(state[i])) for i in at]


@dataclass
class Limit:
    """High (value above ``limit``) or low (below) with a deadband."""

    limit: float
    deadband: float
    high: bool
    active: bool = False

    def update(self, ts: I64, values: F64) -> list[Change]:
        ok = ~np.isnan(values)
        ts, v = ts[ok], values[ok]
        if self.high:
            state = _hysteresis(v > self.limit, v <= self.limit - self.deadband, self.active)
        else:
            state = _hysteresis(v < self.limit, v >= self.limit + self.deadband, self.active)
        out = _changes(ts, state, self.active)
        if len(state):
            self.active = bool(state[-1])
        return out


@dataclass
class Rate:
    """Rate of change: |Δvalue / Δt| above ``limit`` per second, with a deadband on the rate."""

    limit: float
    deadband: float
    active: bool = False
    last: tuple[int, float] | None = None

    def update(self, ts: I64, values: F64) -> list[Change]:
        ok = ~np.isnan(values)
        ts, v = ts[ok], values[ok]
        if self.last is not None:
            t_all = np.concatenate([[self.last[0]], ts])
            v_all = np.concatenate([[self.last[1]], v])
        else:
            t_all, v_all = ts, v
        if len(t_all) < 2:
            if len(ts):
                self.last = (int(ts[-1]), float(v[-1]))
            return []
        dt = np.diff(t_all) / NS_PER_S
        rate = np.abs(np.diff(v_all)) / np.where(dt > 0, dt, np.inf)
        state = _hysteresis(rate > self.limit, rate <= self.limit - self.deadband, self.active)
        out = _changes(t_all[1:], state, self.active)
        self.active = bool(state[-1])
        self.last = (int(t_all[-1]), float(v_all[-1]))
        return out


@dataclass
class Stuck:
    """The value has not moved by more than ``deadband`` from one sample to the next for
    ``for_s`` seconds (a frozen sensor); clears at the first real change."""

    for_s: float
    deadband: float
    active: bool = False
    run_start: int | None = None
    last_value: float | None = None

    def update(self, ts: I64, values: F64) -> list[Change]:
        ok = ~np.isnan(values)
        ts, v = ts[ok], values[ok]
        if len(ts) == 0:
            return []
        prev = np.concatenate(
            [[self.last_value if self.last_value is not None else np.nan], v[:-1]]
        )
        moved = ~(np.abs(v - prev) <= self.deadband)  # NaN (no previous) counts as moved
        starts = np.where(moved, ts, -1)
        starts = np.maximum.accumulate(starts)
        run_start = np.where(
            starts >= 0, starts, self.run_start if self.run_start is not None else ts[0]
        )
        state = (ts - run_start) >= int(self.for_s * NS_PER_S)
        out = _changes(ts, state, self.active)
        self.active = bool(state[-1])
        self.run_start = int(run_start[-1])
        self.last_value = float(v[-1])
        return out


@dataclass
class NoData:
    """No sample for ``for_s`` seconds: checked on the clock (:meth:`tick`), cleared by the
    next sample."""

    for_s: float
    active: bool = False
    last_ts: int | None = None
    started_ns: int | None = None

    def update(self, ts: I64, values: F64) -> list[Change]:
        if len(ts) == 0:
            return []
        self.last_ts = int(ts[-1]) if self.last_ts is None else max(self.last_ts, int(ts[-1]))
        if self.active:
            self.active = False
            return [(int(ts[0]), False)]
        return []

    def tick(self, now_ns: int) -> list[Change]:
        if self.started_ns is None:
            self.started_ns = now_ns
        since = self.last_ts if self.last_ts is not None else self.started_ns
        if not self.active and now_ns - since > int(self.for_s * NS_PER_S):
            self.active = True
            return [(since + int(self.for_s * NS_PER_S), True)]
        return []


Condition = Limit | Rate | Stuck | NoData

"""Walks the shift calendar forward in simulated time (the calendar itself: genba.calendar)."""

from __future__ import annotations

from genba.calendar import ShiftCalendar
from genba.types import NS_PER_S

__all__ = ["CalendarCursor"]


class CalendarCursor:
    """Walks a calendar forward in time: ``at(t)`` → (status, end of that status), O(1)
    amortised. Times are seconds since ``t0_ns``, as in the simulation."""

    HORIZON_S = 7 * 86_400.0

    def __init__(self, calendar: ShiftCalendar, t0_ns: int) -> None:
        self._cal = calendar
        self._t0 = t0_ns
        self._segs: list[tuple[float, float, str]] = []
        self._i = 0
        self._until = 0.0
        self._extend()

    def _extend(self) -> None:
        a = self._until
        b = a + self.HORIZON_S
        for s in self._cal.segments(self._t0 + int(a * NS_PER_S), self._t0 + int(b * NS_PER_S)):
            start, end = (s.start_ns - self._t0) / NS_PER_S, (s.end_ns - self._t0) / NS_PER_S
            if self._segs and self._segs[-1][2] == s.status and self._segs[-1][1] == start:
                self._segs[-1] = (self._segs[-1][0], end, s.status)  # join across horizons
            else:
                self._segs.append((start, end, s.status))
        self._until = b

    def at(self, t: float) -> tuple[str, float]:
        """Status at ``t`` and when to ask again: the end of that status, or of the
        generated horizon (a 24/7 calendar never changes, so it is asked once a week)."""
        while True:
            while self._i < len(self._segs) and self._segs[self._i][1] <= t:
                self._i += 1
            if self._i < len(self._segs):
                _, end, status = self._segs[self._i]
                return status, end
            # The next horizon's first segment may join the last one: look at it again.
            self._i = max(self._i - 1, 0)
            self._extend()

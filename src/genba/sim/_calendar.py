"""The shift calendar of a plant: which UTC times are worked, on a break, or not scheduled.

Shifts and breaks are written in the plant's local time; daylight-saving changes are
handled by :mod:`zoneinfo`, so an 8-hour shift stays 8 hours of local clock time.

>>> from datetime import datetime, UTC
>>> cal = ShiftCalendar([Shift("day", "06:00", "14:00", breaks=[Break("10:00", 30)])], tz="UTC")
>>> t0 = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp()) * 10**9  # a Monday
>>> [(s.status, (s.end_ns - s.start_ns) // 60_000_000_000) for s in cal.segments(t0, t0 + 86_400 * 10**9)]
[('off', 360), ('work', 240), ('break', 30), ('work', 210), ('off', 600)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NS = 1_000_000_000
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORK, BREAK, OFF = "work", "break", "off"


@dataclass(frozen=True, slots=True)
class Break:
    start: str
    minutes: float


@dataclass(frozen=True, slots=True)
class Shift:
    name: str
    start: str
    end: str
    days: Sequence[str] = DAYS
    breaks: Sequence[Break] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Segment:
    start_ns: int
    end_ns: int
    status: str


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


class ShiftCalendar:
    """Worked, break and off time, as UTC segments; with no shifts every hour is worked."""

    def __init__(
        self, shifts: Sequence[Shift], *, tz: str = "UTC", holidays: Sequence[date] = ()
    ) -> None:
        self.shifts = list(shifts)
        self.tz = ZoneInfo(tz)
        self.holidays = set(holidays)

    def _local(self, day: date, hm: str) -> int:
        dt = datetime.combine(day, _hm(hm), tzinfo=self.tz)
        return int(dt.timestamp()) * NS

    def _worked(self, day: date) -> list[Segment]:
        """Work and break segments of the shifts starting on local ``day``."""
        out: list[Segment] = []
        if day in self.holidays:
            return out
        for s in self.shifts:
            if DAYS[day.weekday()] not in s.days:
                continue
            start = self._local(day, s.start)
            end_day = day + timedelta(days=1) if _hm(s.end) <= _hm(s.start) else day
            end = self._local(end_day, s.end)
            cursor = start
            for b in sorted(s.breaks, key=lambda b: (_hm(b.start) < _hm(s.start), _hm(b.start))):
                b_day = day + timedelta(days=1) if _hm(b.start) < _hm(s.start) else day
                b_start = self._local(b_day, b.start)
                b_end = b_start + int(b.minutes * 60 * NS)
                out.append(Segment(cursor, b_start, WORK))
                out.append(Segment(b_start, b_end, BREAK))
                cursor = b_end
            out.append(Segment(cursor, end, WORK))
        return out

    def segments(self, start_ns: int, end_ns: int) -> list[Segment]:
        """Segments covering ``[start_ns, end_ns)`` exactly, in order; gaps are 'off'."""
        if not self.shifts:
            return [Segment(start_ns, end_ns, WORK)]
        first = datetime.fromtimestamp(start_ns // NS, tz=self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end_ns // NS, tz=self.tz).date()
        worked: list[Segment] = []
        day = first
        while day <= last:
            worked += self._worked(day)
            day += timedelta(days=1)
        worked.sort(key=lambda s: s.start_ns)
        out: list[Segment] = []
        cursor = start_ns
        for seg in worked:
            a, b = max(seg.start_ns, cursor), min(seg.end_ns, end_ns)
            if b <= a:
                continue
            if a > cursor:
                out.append(Segment(cursor, a, OFF))
            out.append(Segment(a, b, seg.status))
            cursor = b
        if cursor < end_ns:
            out.append(Segment(cursor, end_ns, OFF))
        return [s for s in out if s.end_ns > s.start_ns]


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
        for s in self._cal.segments(self._t0 + int(a * NS), self._t0 + int(b * NS)):
            start, end = (s.start_ns - self._t0) / NS, (s.end_ns - self._t0) / NS
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

"""The shift calendar of a plant or line: which UTC times are worked, on a break, stopped on
purpose, or not scheduled.

Shifts and breaks are written in the plant's local time; daylight-saving changes are handled
by :mod:`zoneinfo`, so an 8-hour shift stays 8 hours of local clock time (a night shift over
the spring change lasts 7 real hours, over the autumn change 9). Holidays are local dates
with no shifts; planned stops are UTC ranges (maintenance, a meeting) cut out of worked time.

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

from genba.types import NS_PER_S

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORK, BREAK, PLANNED_STOP, OFF = "work", "break", "planned_stop", "off"


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
class PlannedStop:
    """A stop planned ahead (maintenance, a meeting, a trial), UTC nanoseconds."""

    start_ns: int
    end_ns: int
    reason: str = "planned"


@dataclass(frozen=True, slots=True)
class Segment:
    start_ns: int
    end_ns: int
    status: str
    shift: str = ""
    """The shift this segment belongs to ('' when off)."""


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One shift on one day: ``early`` of 2026-03-29 starts at ``start_ns``."""

    name: str
    day: date
    start_ns: int
    end_ns: int


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


class ShiftCalendar:
    """Worked, break, planned-stop and off time as UTC segments; with no shifts every hour
    is worked."""

    def __init__(
        self,
        shifts: Sequence[Shift],
        *,
        tz: str = "UTC",
        holidays: Sequence[date] = (),
        planned_stops: Sequence[PlannedStop] = (),
    ) -> None:
        self.shifts = list(shifts)
        self.tz = ZoneInfo(tz)
        self.holidays = set(holidays)
        self.planned_stops = sorted(planned_stops, key=lambda p: p.start_ns)

    def _local(self, day: date, hm: str) -> int:
        dt = datetime.combine(day, _hm(hm), tzinfo=self.tz)
        return int(dt.timestamp()) * NS_PER_S

    def _instance(self, day: date, s: Shift) -> ShiftInstance:
        end_day = day + timedelta(days=1) if _hm(s.end) <= _hm(s.start) else day
        return ShiftInstance(s.name, day, self._local(day, s.start), self._local(end_day, s.end))

    def _worked(self, day: date) -> list[Segment]:
        """Work and break segments of the shifts starting on local ``day``."""
        out: list[Segment] = []
        if day in self.holidays:
            return out
        for s in self.shifts:
            if DAYS[day.weekday()] not in s.days:
                continue
            inst = self._instance(day, s)
            cursor = inst.start_ns
            for b in sorted(s.breaks, key=lambda b: (_hm(b.start) < _hm(s.start), _hm(b.start))):
                b_day = day + timedelta(days=1) if _hm(b.start) < _hm(s.start) else day
                b_start = self._local(b_day, b.start)
                b_end = b_start + int(b.minutes * 60 * NS_PER_S)
                out.append(Segment(cursor, b_start, WORK, s.name))
                out.append(Segment(b_start, b_end, BREAK, s.name))
                cursor = b_end
            out.append(Segment(cursor, inst.end_ns, WORK, s.name))
        return out

    def _days(self, start_ns: int, end_ns: int) -> list[date]:
        first = datetime.fromtimestamp(start_ns // NS_PER_S, tz=self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end_ns // NS_PER_S, tz=self.tz).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def shift_instances(self, start_ns: int, end_ns: int) -> list[ShiftInstance]:
        """The shifts overlapping ``[start_ns, end_ns)``, in time order, unclipped."""
        out = [
            self._instance(day, s)
            for day in self._days(start_ns, end_ns)
            if day not in self.holidays
            for s in self.shifts
            if DAYS[day.weekday()] in s.days
        ]
        return sorted(
            (i for i in out if i.end_ns > start_ns and i.start_ns < end_ns),
            key=lambda i: i.start_ns,
        )

    def segments(self, start_ns: int, end_ns: int) -> list[Segment]:
        """Segments covering ``[start_ns, end_ns)`` exactly, in order; gaps are 'off'.
        Planned stops cut worked time into ``planned_stop`` segments."""
        if not self.shifts:
            worked = [Segment(start_ns, end_ns, WORK)]
        else:
            worked = sorted(
                (seg for day in self._days(start_ns, end_ns) for seg in self._worked(day)),
                key=lambda s: s.start_ns,
            )
        out: list[Segment] = []
        cursor = start_ns
        for seg in worked:
            a, b = max(seg.start_ns, cursor), min(seg.end_ns, end_ns)
            if b <= a:
                continue
            if a > cursor:
                out.append(Segment(cursor, a, OFF))
            out.extend(self._cut_planned(Segment(a, b, seg.status, seg.shift)))
            cursor = b
        if cursor < end_ns:
            out.append(Segment(cursor, end_ns, OFF))
        return [s for s in out if s.end_ns > s.start_ns]

    def _cut_planned(self, seg: Segment) -> list[Segment]:
        if seg.status != WORK:
            return [seg]
        out: list[Segment] = []
        cursor = seg.start_ns
        for p in self.planned_stops:
            a, b = max(p.start_ns, cursor), min(p.end_ns, seg.end_ns)
            if b <= a:
                continue
            if a > cursor:
                out.append(Segment(cursor, a, WORK, seg.shift))
            out.append(Segment(a, b, PLANNED_STOP, seg.shift))
            cursor = b
        if cursor < seg.end_ns:
            out.append(Segment(cursor, seg.end_ns, WORK, seg.shift))
        return out

from datetime import UTC, date, datetime

from genba.calendar import BREAK, OFF, WORK, Break, Shift, ShiftCalendar
from genba.sim._calendar import CalendarCursor

NS = 10**9


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * NS


def test_night_shift_over_spring_forward_is_one_hour_shorter_in_utc() -> None:
    cal = ShiftCalendar([Shift("night", "22:00", "06:00")], tz="Europe/Berlin")
    # The clocks go from 02:00 to 03:00 local on 2026-03-29.
    segs = cal.segments(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    work = [s for s in segs if s.status == WORK]
    assert len(work) == 1
    assert (work[0].end_ns - work[0].start_ns) / NS / 3600 == 7.0
    assert work[0].start_ns == utc(2026, 3, 28, 21)  # 22:00 CET


def test_weekdays_holidays_and_breaks() -> None:
    cal = ShiftCalendar(
        [Shift("day", "08:00", "16:00", days=("mon", "tue"), breaks=[Break("12:00", 45)])],
        holidays=[date(2026, 1, 6)],
    )
    segs = cal.segments(utc(2026, 1, 5), utc(2026, 1, 8))  # Mon 5th .. Wed 7th
    worked = [(s.status, (s.end_ns - s.start_ns) // (60 * NS)) for s in segs if s.status != OFF]
    assert worked == [(WORK, 240), (BREAK, 45), (WORK, 195)]  # Tuesday 6th is a holiday
    assert sum(s.end_ns - s.start_ns for s in segs) == utc(2026, 1, 8) - utc(2026, 1, 5)


def test_no_shifts_means_always_worked() -> None:
    assert [s.status for s in ShiftCalendar([]).segments(0, 10 * NS)] == [WORK]


def test_cursor_walks_across_its_horizon() -> None:
    cal = ShiftCalendar([Shift("day", "06:00", "18:00")])
    cursor = CalendarCursor(cal, utc(2026, 1, 5))
    seen: list[list] = []  # type: ignore[type-arg]
    t = 0.0
    while t < 20 * 86_400:
        status, until = cursor.at(t)
        if seen and seen[-1][0] == status:  # the cursor may split a status at its horizon
            seen[-1][1] += until - t
        else:
            seen.append([status, until - t])
        t = until
    assert seen[0] == [OFF, 6 * 3600]
    assert [s for s, _ in seen[1:5]] == [WORK, OFF, WORK, OFF]
    assert all(d == 12 * 3600 for _, d in seen[1:-1])  # work and off alternate, 12 h each

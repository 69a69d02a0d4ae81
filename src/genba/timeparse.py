"""Reading times and intervals as people write them, into UTC integer nanoseconds.

>>> parse_duration("1m")
60000000000
>>> parse_time("2026-11-22T10:00:00Z", now_ns=0)
1795341600000000000
>>> parse_time("-15m", now_ns=parse_time("2026-11-22T10:00:00Z", now_ns=0)) == parse_time("2026-11-22T09:45:00Z", now_ns=0)
True
>>> now = parse_time("2026-11-22T10:00:00Z", now_ns=0)
>>> a, b = parse_range("-8h", None, now_ns=now)
>>> (b - a) // 3_600_000_000_000, b == now
(8, True)
>>> parse_duration("5 parsecs")
Traceback (most recent call last):
...
genba.errors.QueryError: Cannot read the interval '5 parsecs': write a number and a unit, such as 500ms, 10s, 1m, 1h or 1d.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from genba.errors import QueryError
from genba.types import NS_PER_MS, NS_PER_S

_UNITS_NS = {
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86400 * NS_PER_S,
    "w": 7 * 86400 * NS_PER_S,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_RELATIVE = re.compile(r"^\s*(?:now)?\s*([+-])\s*(.+)$")
_EPOCH_MS = re.compile(r"^-?[0-9]+$")  # ASCII digits only: '³'.isdigit() is true


def parse_duration(text: str) -> int:
    """``500ms``, ``10s``, ``1m``, ``1h``, ``1d``, ``1w`` → nanoseconds (> 0)."""
    m = _DURATION.match(text)
    if not m:
        raise QueryError(
            f"Cannot read the interval {text!r}: write a number and a unit, "
            "such as 500ms, 10s, 1m, 1h or 1d."
        )
    ns = round(float(m.group(1)) * _UNITS_NS[m.group(2)])
    if ns <= 0:
        raise QueryError(f"The interval {text!r} is zero; give a positive interval such as 1m.")
    return ns


def parse_time(text: str, *, now_ns: int) -> int:
    """A point in time → UTC nanoseconds.

    Accepts ISO 8601 (a time without zone is UTC), epoch milliseconds, ``now``, and times
    relative to now: ``-15m``, ``now-2h``, ``now+1d``.
    """
    t = text.strip()
    if t == "now":
        return now_ns
    if _EPOCH_MS.match(t):
        return _bounded(int(t) * NS_PER_MS, text)
    if m := _RELATIVE.match(t):
        sign = -1 if m.group(1) == "-" else 1
        return _bounded(now_ns + sign * parse_duration(m.group(2)), text)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise QueryError(
            f"Cannot read the time {text!r}: use ISO 8601 such as 2026-11-22T10:00:00Z, "
            "epoch milliseconds, 'now', or a time relative to now such as -15m."
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return _bounded(
        (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000, text
    )


LIMIT_NS = 7_258_118_400 * NS_PER_S
"""2200-01-01: times are integer ns (int64), so genba reads none further from 1970 than this."""


def _bounded(ns: int, text: str) -> int:
    if not -LIMIT_NS <= ns <= LIMIT_NS:
        raise QueryError(
            f"The time {text!r} is out of range: genba reads times between the years 1740 and 2200."
        )
    return ns


def parse_range(
    start: str | None, end: str | None, *, now_ns: int, default: str = "1h"
) -> tuple[int, int]:
    """``[start, end)`` in UTC ns, read the same way by the API, the CLI and the dashboard:
    relative times (``-8h``) count from now, whichever end they stand for; no end is now; no
    start is ``default`` before the end."""
    end_ns = parse_time(end, now_ns=now_ns) if end else now_ns
    start_ns = parse_time(start, now_ns=now_ns) if start else end_ns - parse_duration(default)
    if start_ns > end_ns:
        raise QueryError(
            f"The end ({format_time(end_ns)}) is before the start ({format_time(start_ns)}); "
            "relative times such as -8h count from now, so give an end after the start."
        )
    return start_ns, end_ns


def format_time(ns: int) -> str:
    """UTC ISO 8601 with milliseconds: ``2026-11-22T10:00:00.000Z``."""
    dt = datetime.fromtimestamp(ns // NS_PER_MS / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ns // NS_PER_MS) % 1000:03d}Z"

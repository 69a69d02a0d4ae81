"""JSON payloads of unified-namespace MQTT topics, decoded and checked.

A message on topic ``T`` may carry:

* a bare number or boolean: one sample of tag ``T`` at the time it arrived;
* ``{"value": v, "timestamp": t}``: one sample of ``T`` (``timestamp`` optional);
* ``{"a": v, "b": w, "timestamp": t}``: samples of ``T/a`` and ``T/b`` (a batch object);
* ``[{"value": v, "timestamp": t}, ...]`` or ``[[t, v], ...]``: several samples of ``T``.

Timestamps are UTC epoch milliseconds (integer or float) or ISO 8601 strings. A payload with
anything wrong is refused whole with a reason naming the part that is wrong.

>>> now = 1767571200000000000  # 2026-01-05T00:00:00Z
>>> decode(b'{"value": 21.5, "timestamp": 1767571199000}', "s/a/l/m/t", now_ns=now, max_future_ns=0)
[('s/a/l/m/t', 1767571199000000000, 21.5)]
>>> decode(b'"hot"', "s/a/l/m/t", now_ns=now, max_future_ns=0)
Traceback (most recent call last):
...
genba.connectors._payload.PayloadError: value 'hot' is not a number or boolean
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from genba.errors import GenbaError, QueryError
from genba.paths import check_path
from genba.timeparse import format_time, parse_time
from genba.types import NS_PER_MS

Sample = tuple[str, int, float]
MAX_TS_NS = 7_258_118_400 * 10**9  # 2200-01-01: well inside int64 nanoseconds


class PayloadError(GenbaError):
    """A payload that cannot be used; the message says why."""


def _value(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if not isinstance(v, int | float):
        raise PayloadError(f"value {v!r} is not a number or boolean")
    f = float(v)
    if not math.isfinite(f):
        raise PayloadError(f"value {v!r} is not finite")
    return f


def _time(t: Any, now_ns: int, max_future_ns: int) -> int:
    if isinstance(t, bool) or t is None:
        raise PayloadError(f"timestamp {t!r} is not a time")
    if isinstance(t, int | float):
        if not math.isfinite(t) or t < 0:
            raise PayloadError(f"timestamp {t!r} is not epoch milliseconds")
        if t >= MAX_TS_NS // NS_PER_MS:
            raise PayloadError(f"timestamp {t!r} is out of range (after the year 2200)")
        # Float milliseconds resolve to whole microseconds, exactly (t × 1000 < 2^53).
        ns = t * NS_PER_MS if isinstance(t, int) else round(t * 1000) * 1000
    elif isinstance(t, str):
        try:
            ns = parse_time(t, now_ns=now_ns)
        except QueryError as e:
            raise PayloadError(f"timestamp {t!r}: {e}") from None
    else:
        raise PayloadError(f"timestamp {t!r} is not epoch milliseconds or ISO 8601")
    if ns >= MAX_TS_NS:
        raise PayloadError(f"timestamp {t!r} is out of range (after the year 2200)")
    if ns < 0:
        raise PayloadError(f"timestamp {t!r} is before 1970")
    if ns > now_ns + max_future_ns:
        raise PayloadError(
            f"timestamp {format_time(ns)} is more than {max_future_ns // 10**9} s in the future "
            f"(now {format_time(now_ns)}); check the device clock"
        )
    return ns


def decode(payload: bytes, topic: str, *, now_ns: int, max_future_ns: int) -> list[Sample]:
    """Samples ``(tag path, ts_ns, value)`` in ``payload``; PayloadError says what is wrong."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise PayloadError(f"not JSON: {e}") from None
    if isinstance(body, dict):
        return _object(body, topic, now_ns, max_future_ns)
    if isinstance(body, list):
        return _array(body, topic, now_ns, max_future_ns)
    return [(topic, now_ns, _value(body))]


def _object(body: dict[str, Any], topic: str, now_ns: int, max_future_ns: int) -> list[Sample]:
    """``{"value", "timestamp"}`` (one sample of ``topic``) or a batch object (one sample of
    ``topic/key`` for each key)."""
    ts = _time(body["timestamp"], now_ns, max_future_ns) if "timestamp" in body else now_ns
    if "value" in body:
        extra = set(body) - {"value", "timestamp", "quality"}
        if extra:
            raise PayloadError(f"unexpected keys {sorted(extra)} next to 'value'")
        return [(topic, ts, _value(body["value"]))]
    out = []
    for key, v in body.items():
        if key == "timestamp":
            continue
        try:
            path = check_path(f"{topic}/{key}")
        except ValueError as e:
            raise PayloadError(str(e)) from None
        out.append((path, ts, _value(v)))
    if not out:
        raise PayloadError("object holds no values")
    return out


def _array(body: list[Any], topic: str, now_ns: int, max_future_ns: int) -> list[Sample]:
    """``[{"value", "timestamp"}, …]`` or ``[[timestamp, value], …]``: samples of ``topic``."""
    out = []
    for i, item in enumerate(body):
        if isinstance(item, dict) and "value" in item:
            t = _time(item["timestamp"], now_ns, max_future_ns) if "timestamp" in item else now_ns
            out.append((topic, t, _value(item["value"])))
        elif isinstance(item, list) and len(item) == 2:
            out.append((topic, _time(item[0], now_ns, max_future_ns), _value(item[1])))
        else:
            raise PayloadError(
                f"element {i} is neither {{'value':…, 'timestamp':…}} nor [timestamp, value]"
            )
    if not out:
        raise PayloadError("empty array")
    return out

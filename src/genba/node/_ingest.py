"""Bulk ingest over HTTP: JSON rows, CSV or Arrow IPC, validated row by row.

Columns: ``tag`` (path), ``timestamp`` (epoch ms; ISO 8601 text also in JSON and CSV) and
``value``; ``quality`` optional (0 good, 1 uncertain, 2 bad). A bad row with no value is a stale
mark (its source was lost: docs/kpi.md). Rows that fail validation — a bad path, a good or
uncertain value that is not a finite number, a timestamp missing, out of range or more than
``max_future_s`` ahead — are refused one by one with their row number and reason (and kept as
dead letters); the valid rows are stored. New tags are registered on first sight, so history
can be back-filled for tags the node has never seen. Numeric CSV and Arrow columns are checked
as whole arrays; only text timestamps are read one by one.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc

from genba.deadletter import DeadLetters
from genba.errors import QueryError
from genba.paths import check_path
from genba.tags import TagRegistry
from genba.timeparse import parse_time
from genba.types import NS_PER_MS, Quality, SampleBatch, TagSpec

SOURCE = "http-ingest"
MAX_TS_NS = 7_258_118_400 * 10**9  # 2200-01-01
MAX_ERRORS_SHOWN = 100
MAX_NEW_TAGS = 100_000
"""New tags one request may create; rows of more are refused (send them in parts)."""
CONTENT_TYPES = ("application/json", "text/csv", "application/vnd.apache.arrow.stream")
F64 = npt.NDArray[np.float64]


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "errors": self.errors}


def _number(x: Any) -> float:
    if isinstance(x, bool) or x is None:
        return float(x) if isinstance(x, bool) else np.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return np.nan


_MS_LIMIT = 9_000_000_000_000  # epoch ms beyond which ns no longer fit in int64 (year 2255)


def _ms_to_ns(ms: float | int) -> int | None:
    """Epoch ms (whole or fractional) as exact integer ns; None if not a finite time."""
    if isinstance(ms, int):
        return ms * NS_PER_MS if abs(ms) < _MS_LIMIT else None
    if not math.isfinite(ms) or abs(ms) >= _MS_LIMIT:
        return None
    whole = math.floor(ms)
    return whole * NS_PER_MS + round((ms - whole) * NS_PER_MS)


def _time_ns(x: Any, now_ns: int) -> int | None:
    """One timestamp cell: epoch ms (number or numeric text) or ISO 8601 text, as int ns."""
    if isinstance(x, int | float) and not isinstance(x, bool):
        return _ms_to_ns(x)
    if isinstance(x, str):
        for number in (int, float):
            try:
                return _ms_to_ns(number(x))
            except ValueError:
                continue
        try:
            t = parse_time(x, now_ns=now_ns)
        except QueryError:
            return None
        return min(max(t, -1), MAX_TS_NS)  # year 9999 is refused as out of range, not int64
    return None


def _timestamps(col: Any, now_ns: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The timestamp column as exact integer ns, and which cells held a readable time.

    Integer arithmetic throughout: ns since 1970 need 61 bits, more than a float64 holds, and
    a float detour moves timestamps by up to a few hundred ns (enough to change the ms).
    """
    if isinstance(col, pa.ChunkedArray) and pa.types.is_timestamp(col.type):
        per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[col.type.unit]
        raw = col.cast(pa.int64())  # in its own unit, then clipped: never overflows ns
        n = np.asarray(raw.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        valid = ~np.asarray(raw.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        n = np.clip(n, -1, MAX_TS_NS // per)  # year 9999 is refused as out of range, no overflow
        return np.where(valid, n, 0) * per, valid
    if isinstance(col, pa.ChunkedArray) and pa.types.is_integer(col.type):
        ms = np.asarray(col.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        valid &= np.abs(ms) < _MS_LIMIT
        return np.where(valid, ms, 0) * NS_PER_MS, valid
    if isinstance(col, pa.ChunkedArray) and pa.types.is_floating(col.type):
        f = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        valid = np.isfinite(f) & (np.abs(f) < _MS_LIMIT)
        f = np.where(valid, f, 0.0)
        whole = np.floor(f)
        ns = whole.astype(np.int64) * NS_PER_MS + np.round((f - whole) * NS_PER_MS).astype(np.int64)
        return ns, valid
    exact = [_time_ns(x, now_ns) for x in _cells(col)]
    valid = np.array([x is not None for x in exact], dtype=bool)
    return np.array([x or 0 for x in exact], dtype=np.int64), valid


def _as_float(col: Any, convert: Any) -> F64:
    """A numeric Arrow column as a float array (nulls NaN); anything else element by element."""
    if isinstance(col, pa.ChunkedArray) and (
        pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
    ):
        # unsafe: an integer past 2**53 becomes the nearest float, not an error
        arr: F64 = col.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        return arr
    return np.array([convert(x) for x in _cells(col)], dtype=np.float64)


def _cells(col: Any) -> list[Any]:
    """A column as Python values; a type whose values Python cannot hold (a date past year
    9999, say) is an unreadable body."""
    if not isinstance(col, pa.ChunkedArray):
        return list(col)
    try:
        cells: list[Any] = col.to_pylist()
    except (OverflowError, ValueError, pa.ArrowException) as e:
        raise QueryError(f"a column of type {col.type} cannot be read: {e}") from None
    return cells


def _columns(body: bytes, content_type: str) -> dict[str, Any]:
    """The tag, timestamp, value and quality columns of a body; QueryError (400) when the body
    cannot be read."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            return _json_columns(body)
        return _table_columns(_read_table(body, kind))
    except (orjson.JSONDecodeError, pa.ArrowException, OSError, OverflowError) as e:
        raise QueryError(f"cannot read the {kind} body: {e}") from None
    except UnicodeDecodeError as e:
        raise QueryError(f"the {kind} body is not UTF-8 where it must be: {e}") from None


def _json_columns(body: bytes) -> dict[str, Any]:
    doc = orjson.loads(body)
    rows = doc.get("samples") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise QueryError('a JSON body is [{"tag", "timestamp", "value"}, …] or {"samples": […]}')
    rows = [r if isinstance(r, dict) else {} for r in rows]
    return {k: [r.get(k) for r in rows] for k in ("tag", "timestamp", "value", "quality")}


def _read_table(body: bytes, kind: str) -> pa.Table:
    if kind == "text/csv":
        return pacsv.read_csv(io.BytesIO(body))
    if kind == "application/vnd.apache.arrow.stream":
        table = paipc.open_stream(body).read_all()
        # Offsets and lengths in an IPC stream are the sender's word: checked in full before
        # any is followed (a mutated stream once crashed the process).
        table.validate(full=True)
        return table
    raise QueryError(
        f"content type {kind!r} is not accepted; use one of: {', '.join(CONTENT_TYPES)}"
    )


def _table_columns(table: pa.Table) -> dict[str, Any]:
    names = table.column_names
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise QueryError(f"the body has the column(s) {twice} more than once")
    missing = {"tag", "timestamp", "value"} - set(names)
    if missing:
        raise QueryError(
            f"the body has no {sorted(missing)} column(s); columns are tag, timestamp, "
            "value[, quality]"
        )
    cols: dict[str, Any] = {k: table.column(k) for k in ("timestamp", "value")}
    tag = table.column("tag")
    if pa.types.is_dictionary(tag.type):  # a Parquet file's tags, each distinct path once
        tag = tag.cast(pa.dictionary(tag.type.index_type, pa.string()))
    else:
        tag = tag.cast(pa.string())
    cols["tag"] = tag
    cols["quality"] = table.column("quality") if "quality" in names else None
    return cols


def _tag_codes(tags: Any) -> tuple[npt.NDArray[np.int64], list[str | None]]:
    """Each row's index into the distinct tags (None for a missing one): Arrow's dictionary
    encoding for a table's column (no Python object per row), one pass for JSON's values."""
    if isinstance(tags, pa.ChunkedArray):
        enc = (
            tags.unify_dictionaries().combine_chunks()
            if pa.types.is_dictionary(tags.type)
            else None
        )
        if enc is None or len(set(enc.dictionary.to_pylist())) < len(enc.dictionary):
            enc = pc.dictionary_encode(tags.cast(pa.string()).combine_chunks())
        distinct: list[str | None] = enc.dictionary.to_pylist()
        indices = enc.indices
        if indices.null_count:
            indices = pc.fill_null(indices, len(distinct))
            distinct.append(None)
        return indices.to_numpy().astype(np.int64), distinct
    number: dict[str | None, int] = {}
    code = np.fromiter(
        (number.setdefault(t if isinstance(t, str) else None, len(number)) for t in tags),
        dtype=np.int64,
        count=len(tags),
    )
    return code, list(number)


def ingest(
    body: bytes,
    content_type: str,
    *,
    registry: TagRegistry,
    now_ns: int,
    dead_letters: DeadLetters,
    max_future_s: float = 300.0,
) -> tuple[SampleBatch, IngestResult]:
    """Parse and validate ``body``; return the batch of valid rows and what was refused."""
    return _validated(
        _columns(body, content_type),
        registry=registry,
        now_ns=now_ns,
        dead_letters=dead_letters,
        max_future_s=max_future_s,
    )


def ingest_table(
    table: pa.Table,
    *,
    registry: TagRegistry,
    now_ns: int,
    dead_letters: DeadLetters,
    max_future_s: float = 300.0,
) -> tuple[SampleBatch, IngestResult]:
    """:func:`ingest` of a table already read (``genba import``'s file, a chunk at a time):
    the same checks, without a round trip through a body."""
    return _validated(
        _table_columns(table),
        registry=registry,
        now_ns=now_ns,
        dead_letters=dead_letters,
        max_future_s=max_future_s,
    )


def _resolve_tags(
    distinct: list[str | None], used: npt.NDArray[np.bool_], registry: TagRegistry, why: list[str]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Each distinct tag's id (new ones, if a kept row uses them, registered in one call) and
    its refusal as an index into ``why`` (0: none), messages appended there."""
    tag_id = np.zeros(len(distinct) + 1, dtype=np.int32)
    bad = np.zeros(len(distinct), dtype=np.int32)
    good: list[tuple[int, TagSpec]] = []
    new = 0
    for k, path in enumerate(distinct):
        try:
            if path is None:
                raise ValueError("tag is missing")
            if path not in registry:
                if not used[k]:
                    continue
                new += 1
                if new > MAX_NEW_TAGS:
                    raise ValueError(
                        f"more than {MAX_NEW_TAGS} new tags in one request; send them in parts"
                    )
            good.append((k, TagSpec(check_path(path))))
        except ValueError as e:
            why.append(str(e))
            bad[k] = len(why) - 1
    for (k, _), tag in zip(good, registry.ensure([spec for _, spec in good]), strict=True):
        tag_id[k] = tag.id
    return tag_id, bad


def _validated(
    cols: dict[str, Any],
    *,
    registry: TagRegistry,
    now_ns: int,
    dead_letters: DeadLetters,
    max_future_s: float,
) -> tuple[SampleBatch, IngestResult]:
    tags = cols["tag"]
    n = len(tags)
    ts_ns, ts_ok = _timestamps(cols["timestamp"], now_ns)
    ts = np.where(ts_ok, ts_ns.astype(np.float64), np.nan)  # for the range checks only
    values = _as_float(cols["value"], _number)
    quality = np.zeros(n) if cols["quality"] is None else _as_float(cols["quality"], _number)
    quality = np.where(np.isnan(quality), 0.0, quality)

    # Why each row is refused, as an index into ``why`` (0: kept): a later check overrides an
    # earlier one, as the message most useful to the sender. Integer codes, not strings: a
    # million rows compared as Python objects took longer than the rest of the import.
    why = [""]
    reason = np.zeros(n, dtype=np.int32)

    def refuse(rows: npt.NDArray[np.bool_], message: str) -> None:
        why.append(message)
        reason[rows] = len(why) - 1

    stale = (quality == Quality.BAD) & np.isnan(values)  # a stale mark: BAD, no value
    values = np.where(stale, np.nan, values)
    refuse(
        ~np.isfinite(values) & ~stale,
        "value is missing or not a finite number (a stale mark has quality 2)",
    )
    refuse(
        (quality < 0) | (quality > 2) | (quality != np.round(quality)), "quality must be 0, 1 or 2"
    )
    refuse(np.isnan(ts), "timestamp is missing or unreadable")
    refuse(ts < 0, "timestamp is before 1970")
    refuse(ts >= MAX_TS_NS, "timestamp is out of range (after the year 2200)")
    refuse(
        (ts > now_ns + max_future_s * 1e9) & (ts < MAX_TS_NS),
        f"timestamp is more than {max_future_s:g} s in the future",
    )
    # Each distinct tag once, new ones registered in one call: linear in rows and tags (20,000
    # distinct tags in one CSV once took 26 s, quadratic).
    code, distinct = _tag_codes(tags)
    used = np.zeros(len(distinct), dtype=bool)  # a tag is created only for a row it keeps
    used[code[reason == 0]] = True
    tag_id, bad = _resolve_tags(distinct, used, registry, why)
    ids = tag_id[code] if n else np.zeros(0, dtype=np.int32)
    refused = bad[code] if n else bad[:0]
    reason = np.where((reason == 0) & (refused != 0), refused, reason)
    ok = reason == 0
    result = IngestResult(accepted=int(ok.sum()), rejected=int((~ok).sum()))
    for i in np.flatnonzero(~ok):
        tag, message = str(distinct[code[i]]), why[reason[i]]
        if len(result.errors) < MAX_ERRORS_SHOWN:
            result.errors.append({"row": int(i), "tag": tag, "reason": message})
        dead_letters.add(SOURCE, f"row {i}: {message}", topic=tag, ts_ns=now_ns)
    batch = SampleBatch.from_columns(
        tag_ids=ids[ok],
        ts_ns=ts_ns[ok],
        values=values[ok],
        quality=quality[ok].astype(np.uint8),
    )
    return batch, result

"""The :class:`Store` contract every historian backend fulfils.

A store is synchronous and thread-safe: the node calls it from worker threads
(``asyncio.to_thread``) so a long query never stalls the event loop. Times are UTC integer
nanoseconds; ranges are half-open ``[start_ns, end_ns)``; time buckets are aligned to the
Unix epoch, so ``every=1m`` buckets start on whole UTC minutes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from genba import plugins
from genba.config import StoreSettings
from genba.errors import ConfigError, QueryError
from genba.timeparse import format_time
from genba.types import SampleBatch, Tag, TagId

AGGREGATES = ("avg", "min", "max", "count", "first", "last", "sum")
"""Aggregate functions over a time bucket. They use samples whose quality is not BAD."""
ROLLUP = ("count", "sum", "min", "max", "first", "last")
"""What a downsampling tier keeps per bucket: enough to answer every aggregate over any
multiple of its bucket."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open UTC range ``[start_ns, end_ns)``.

    >>> TimeRange(10, 5)
    Traceback (most recent call last):
    ...
    genba.errors.QueryError: The end (1970-01-01T00:00:00.000Z) is before the start (1970-01-01T00:00:00.000Z); give an end after the start.
    """

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        if self.end_ns < self.start_ns:
            raise QueryError(
                f"The end ({format_time(self.end_ns)}) is before the start "
                f"({format_time(self.start_ns)}); "
                "give an end after the start."
            )
        if self.end_ns == self.start_ns:
            raise QueryError(
                f"The range is empty: start and end are both {format_time(self.start_ns)}; "
                "give an end after the start."
            )


@dataclass(frozen=True, slots=True)
class Buckets:
    """Time-bucket aggregates: one row per (tag, bucket) that holds samples."""

    tag_ids: npt.NDArray[np.int32]
    bucket_ns: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[np.float64]]

    def __len__(self) -> int:
        return len(self.tag_ids)


@dataclass(frozen=True, slots=True)
class Runs:
    """One tag's samples as runs of one value: each run holds ``value`` from its first sample
    at ``start_ns`` to its last at ``last_ns``, with no two samples more than the asked gap
    apart. BAD samples (stale marks: the source was lost) are runs of NaN. For step signals
    (states, codes, counters) this keeps everything the samples say, in far fewer rows."""

    start_ns: npt.NDArray[np.int64]
    last_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.start_ns)


RUNS_SQL = """
SELECT min(ts_ns) AS start_ns, max(ts_ns) AS last_ns, min(value) AS value FROM (
  SELECT ts_ns, value, sum(chg) OVER (ORDER BY ts_ns ROWS UNBOUNDED PRECEDING) AS run FROM (
    SELECT ts_ns, value,
      CASE WHEN lag(ts_ns) OVER w IS NULL OR value <> lag(value) OVER w
           OR ts_ns - lag(ts_ns) OVER w > {gap} THEN 1 ELSE 0 END AS chg
    FROM (
      SELECT ts_ns, CASE WHEN quality >= {bad} THEN CAST('NaN' AS double precision) ELSE value END
        AS value
      FROM {samples} WHERE tag_id = {tag} AND ts_ns >= {a} AND ts_ns < {b}
    ) AS s
    WINDOW w AS (ORDER BY ts_ns)
  ) AS marked
) AS numbered GROUP BY run ORDER BY start_ns
"""
"""Runs in SQL that DuckDB and PostgreSQL both speak: a new run where the value changes or
after a gap (window ``lag``), numbered by a running sum, then grouped."""


RECORD_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Record:
    """One entry of the store's append-only record log: an event, an alarm transition, a
    dead letter, a rule change; later models, audit and ledger entries.

    ``kind`` says which log (``alarm.event``, ``deadletter``...), ``ts_ns`` when it happened
    (UTC ns), ``key`` what it is about (an alarm's key, a connector's name; ``""`` for none),
    ``body`` the JSON object itself. ``seq`` is given by the store when the record is appended:
    increasing across all kinds in the order of commit, never reused."""

    kind: str
    ts_ns: int
    key: str
    body: dict[str, Any]
    seq: int = 0

    def encoded(self) -> str:
        """The body as JSON text; raises :class:`QueryError` naming what is wrong."""
        if not RECORD_KIND.match(self.kind):
            raise QueryError(
                f"record kind {self.kind!r}: use 1-64 lowercase letters, digits, '_', '-' or "
                "'.', starting with a letter (e.g. 'alarm.event')"
            )
        if not -(2**63) <= self.ts_ns < 2**63:
            raise QueryError(f"record {self.kind!r}: ts_ns {self.ts_ns} is not an int64")
        try:
            return json.dumps(self.body, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as e:
            raise QueryError(f"record {self.kind!r} {self.key!r}: body is not JSON: {e}") from e


def record_filter(
    kind: str, key: str | None, span: TimeRange | None, after_seq: int, mark: str
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a record query and its parameters; ``mark`` formats a parameter
    name as the backend writes it (``"${}"`` for DuckDB, ``"%({})s"`` for psycopg)."""
    where = [f"kind = {mark.format('kind')}", f"seq > {mark.format('after')}"]
    params: dict[str, Any] = {"kind": kind, "after": after_seq}
    if key is not None:
        where.append(f"key = {mark.format('key')}")
        params["key"] = key
    if span is not None:
        where.append(f"ts_ns >= {mark.format('start')} AND ts_ns < {mark.format('end')}")
        params |= {"start": span.start_ns, "end": span.end_ns}
    return " AND ".join(where), params


def check_limit(limit: int) -> int:
    if not 1 <= limit <= 1_000_000:
        raise QueryError(f"limit {limit}: give 1 to 1,000,000 records")
    return limit


class Store(Protocol):
    """What every historian backend does. Keep this small; it is implemented more than once."""

    kind: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, data_dir: Path, read_only: bool) -> Self:
        """Open the backend described by ``settings`` (creating its schema if writable)."""
        ...

    def close(self) -> None:
        """Make everything appended durable and release the backend."""
        ...

    def append(self, batch: SampleBatch) -> None:
        """Write ``batch``; when this returns the samples are durable."""
        ...

    def raw(
        self,
        tag_ids: list[TagId],
        span: TimeRange,
        *,
        limit: int | None = None,
        after: tuple[int, TagId] | None = None,
    ) -> SampleBatch:
        """Samples of ``tag_ids`` in ``span``, ordered by time then tag; at most ``limit``.

        ``after = (ts_ns, tag_id)`` of the last row of a page gives the next page."""
        ...

    def raw_by_tag(self, tag_ids: list[TagId], span: TimeRange) -> SampleBatch:
        """Samples of ``tag_ids`` in ``span``, ordered by tag then time: one read that the
        caller cuts into each tag's series (KPIs of a fleet read their signals this way)."""
        ...

    def aggregate(
        self, tag_ids: list[TagId], span: TimeRange, *, every_ns: int, aggs: list[str]
    ) -> Buckets:
        """Aggregates ``aggs`` (from :data:`AGGREGATES`) per tag and epoch-aligned bucket."""
        ...

    def runs(self, tag_id: TagId, span: TimeRange, *, max_gap_ns: int) -> Runs:
        """The samples of ``tag_id`` in ``span`` as :class:`Runs` (BAD ones as NaN: a stale
        mark): a new run starts where the value changes or more than ``max_gap_ns`` after the
        previous sample."""
        ...

    def last(self, tag_ids: list[TagId] | None = None) -> SampleBatch:
        """The newest sample of each tag (all tags when ``None``) that has one."""
        ...

    def load_tags(self) -> list[Tag]:
        """The tag catalogue saved with the data."""
        ...

    def save_tags(self, tags: list[Tag]) -> None:
        """Insert or update these tags in the catalogue."""
        ...

    def count(self) -> int:
        """Number of samples held."""
        ...

    def delete_before(self, tag_ids: list[TagId], before_ns: int) -> int:
        """Remove the samples of ``tag_ids`` older than ``before_ns`` (retention); how many."""
        ...

    def append_records(self, records: list[Record]) -> list[int]:
        """Append ``records`` to the record log in one transaction; their sequence numbers,
        in order. Records are never changed or deleted through this contract."""
        ...

    def records(
        self,
        kind: str,
        *,
        key: str | None = None,
        span: TimeRange | None = None,
        after_seq: int = 0,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[Record]:
        """Records of ``kind`` (of one ``key``, in ``span`` by ``ts_ns``, with ``seq`` above
        ``after_seq``), by ``seq`` — oldest first, or newest first — at most ``limit``."""
        ...


@runtime_checkable
class Rollups(Protocol):
    """The optional capability of a store to keep downsampling tiers (``[[retention]]``
    ``tiers``): both built-in backends have it; a backend without it still is a
    :class:`Store`, and a config that asks it for tiers is refused at start, naming it."""

    def roll_up(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> None:
        """Aggregate the raw samples of ``tag_ids`` in ``span`` (whole buckets) into the
        ``every_ns`` tier (columns :data:`ROLLUP`); a bucket rolled up again is replaced."""
        ...

    def read_rollup(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> Buckets:
        """The ``every_ns`` tier's buckets of ``tag_ids`` starting in ``span``, by tag and time."""
        ...

    def rollup_end(self, every_ns: int, tag_ids: list[TagId]) -> int | None:
        """The start of the newest bucket of ``tag_ids`` in the ``every_ns`` tier, if any."""
        ...

    def delete_rollup_before(self, every_ns: int, tag_ids: list[TagId], before_ns: int) -> int:
        """Remove buckets of the ``every_ns`` tier that start before ``before_ns``; how many."""
        ...


@runtime_checkable
class Compacting(Protocol):
    """The optional capability of a store to lay its history out for reading by tag after it
    is written (DuckDB: segments sorted by tag; PostgreSQL: closed partitions rewritten in
    tag order). The :class:`~genba.historian.Compaction` component calls it."""

    def compact(self) -> object:
        """Do what is due now; what it did (backend-specific)."""
        ...


@runtime_checkable
class Streaming(Protocol):
    """The optional capability to read a long range by time in one pass, a batch at a time
    (export): a backend without it is read in pages of :meth:`Store.raw`."""

    def stream(self, tag_ids: list[TagId], span: TimeRange, *, rows: int) -> Iterator[SampleBatch]:
        """The samples of ``tag_ids`` in ``span`` by (time, tag), at most ``rows`` a batch."""
        ...


def check_aggs(aggs: list[str]) -> list[str]:
    bad = [a for a in aggs if a not in AGGREGATES]
    if bad or not aggs:
        raise QueryError(
            f"Unknown aggregate {', '.join(repr(b) for b in bad) or '(none given)'}; "
            f"valid values are: {', '.join(AGGREGATES)}."
        )
    return aggs


def open_store(settings: StoreSettings, *, data_dir: Path, read_only: bool = False) -> Store:
    """Open the store kind named in ``settings`` through the ``genba.stores`` plugins."""
    try:
        cls = plugins.load(plugins.STORES, settings.kind)
    except KeyError as e:
        raise ConfigError(f"store.kind: {e.args[0]}", key="store.kind") from None
    store: Store = cls.from_settings(settings, data_dir=data_dir, read_only=read_only)
    return store

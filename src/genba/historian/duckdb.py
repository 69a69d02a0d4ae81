"""The embedded historian: one DuckDB file under the node's data dir.

Appends go in as Arrow tables (zero-copy from the bus's numpy columns), one transaction a
batch, so a returned :meth:`DuckDBStore.append` is in DuckDB's write-ahead log. The newest
sample of every tag is also kept in memory, so ``last`` does not scan history.

A write that fails (a full or read-only disk: DuckDB then invalidates the whole database, even
for reads) leaves the connection marked broken; the next call closes it and opens the file
again, so the store comes back by itself once the disk does. A file that disappears under a
running node (its data dir removed or unmounted: writes would go on into a deleted file) is
noticed before each write and refused until the file is back at its path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from genba.config import StoreSettings
from genba.errors import ConfigError, StoreError, StoreLockedError
from genba.historian import _segments
from genba.historian._derived import by_tag, runs_of
from genba.historian._segments import CompactionStats, Stopped
from genba.historian._store import (
    ROLLUP,
    Buckets,
    Record,
    Runs,
    TimeRange,
    check_aggs,
    check_limit,
    record_filter,
)
from genba.types import QUALITY_DTYPE, Quality, SampleBatch, Tag, TagId, TagSpec

log = logging.getLogger("genba.historian")

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "tags, samples, downsampling tiers",
        """
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY, path VARCHAR NOT NULL UNIQUE,
    unit VARCHAR NOT NULL, description VARCHAR NOT NULL, low DOUBLE, high DOUBLE
);
CREATE TABLE IF NOT EXISTS rollups (
    every_ns BIGINT NOT NULL, tag_id INTEGER NOT NULL, bucket_ns BIGINT NOT NULL,
    count DOUBLE, sum DOUBLE, min DOUBLE, max DOUBLE, first DOUBLE, last DOUBLE,
    PRIMARY KEY (every_ns, tag_id, bucket_ns)
);
CREATE TABLE IF NOT EXISTS samples (
    tag_id INTEGER NOT NULL, ts_ns BIGINT NOT NULL, value DOUBLE NOT NULL,
    quality UTINYINT NOT NULL
);
""",
    ),
    (
        2,
        "the record log",
        """
CREATE SEQUENCE record_seq START 1;
CREATE TABLE records (
    seq BIGINT PRIMARY KEY, kind VARCHAR NOT NULL, ts_ns BIGINT NOT NULL,
    key VARCHAR NOT NULL, body JSON NOT NULL
);
""",
    ),
    (3, "segments sorted by tag, and each tag's newest sample", _segments.DDL),
]
"""Numbered schema changes, applied in order at open (as PostgreSQL's are by ``genba db
upgrade``); ``meta.schema_version`` is the last one applied. A file written before numbered
migrations holds version 1."""
SCHEMA_VERSION = MIGRATIONS[-1][0]

CLOSE_MOVE_ROWS = 100_000
"""A hot table this large is moved into a segment at a clean close (see ``close``)."""

_AGG_SQL = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "count": "count(*)::DOUBLE",
    "first": "arg_min(value, ts_ns)",
    "last": "arg_max(value, ts_ns)",
    "sum": "sum(value)",
}


class DuckDBSettings(BaseModel):
    """Options of ``[store]`` when ``kind = "duckdb"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(
        Path("historian.duckdb"), description="Database file; relative paths are under data_dir."
    )
    memory_limit: str = Field(
        "1GB",
        description="DuckDB memory_limit, e.g. '512MB', '4GB': its cache of written blocks "
        "grows to it and stays, so a node's memory is about 400 MB plus this "
        "(docs/performance.md, 'Memory over a simulated day').",
    )
    threads: int = Field(2, ge=1, le=256, description="Threads DuckDB may use for a query.")
    checkpoint_threshold: str = Field(
        "16MB",
        pattern=r"^\d+(\.\d+)?\s*[KMG]i?B$",
        description="Write-ahead log size at which DuckDB checkpoints into the file, e.g. "
        "'16MB'; smaller keeps less in the log on a small disk.",
    )
    compact_rows: int = Field(
        2_000_000,
        ge=1_000,
        description="Samples kept in arrival order before they move, sorted by tag, into a "
        "segment (docs/historian.md, 'Layout'). Smaller opens faster and reads the newest data "
        "by tag sooner; larger rewrites history less often.",
    )


class _LastValues:
    """Newest sample per tag id, as arrays indexed by tag id; updated a batch at a time."""

    def __init__(self) -> None:
        self.ts = np.full(1, np.iinfo(np.int64).min, dtype=np.int64)
        self.value = np.zeros(1, dtype=np.float64)
        self.quality = np.zeros(1, dtype=QUALITY_DTYPE)
        self._lock = threading.Lock()

    def _grow(self, max_id: int) -> None:
        n = len(self.ts)
        if max_id < n:
            return
        size = max(max_id + 1, 2 * n)
        self.ts = np.concatenate([self.ts, np.full(size - n, np.iinfo(np.int64).min)])
        self.value = np.concatenate([self.value, np.zeros(size - n)])
        self.quality = np.concatenate([self.quality, np.zeros(size - n, dtype=QUALITY_DTYPE)])

    def update(self, batch: SampleBatch) -> None:
        if not len(batch):
            return
        # Sort by (tag, time); the last row of each tag run is that tag's newest sample.
        order = np.lexsort((batch.ts_ns, batch.tag_ids))
        ids = batch.tag_ids[order]
        ends = np.flatnonzero(np.diff(ids, append=np.int32(-1)) != 0)
        rows = order[ends]
        tag = batch.tag_ids[rows]
        with self._lock:
            self._grow(int(tag.max()))
            newer = batch.ts_ns[rows] >= self.ts[tag]
            tag, rows = tag[newer], rows[newer]
            self.ts[tag] = batch.ts_ns[rows]
            self.value[tag] = batch.values[rows]
            self.quality[tag] = batch.quality[rows]

    def get(self, tag_ids: list[TagId] | None) -> SampleBatch:
        with self._lock:
            if tag_ids is None:
                ids = np.flatnonzero(self.ts != np.iinfo(np.int64).min).astype(np.int32)
            else:
                ids = np.asarray(tag_ids, dtype=np.int32)
                ids = ids[ids < len(self.ts)]
                ids = ids[self.ts[ids] != np.iinfo(np.int64).min]
            return SampleBatch(ids, self.ts[ids], self.value[ids], self.quality[ids])


class DuckDBStore:
    """Historian in one DuckDB file. See :class:`genba.historian.Store` for the contract.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> s = DuckDBStore(d / "h.duckdb")
    >>> s.append(SampleBatch.from_columns(tag_ids=[1, 1], ts_ns=[0, 60_000_000_000], values=[2.0, 4.0]))
    >>> s.aggregate([1], TimeRange(0, 120_000_000_000), every_ns=60_000_000_000, aggs=["avg"]).columns["avg"].tolist()
    [2.0, 4.0]
    >>> s.close()
    """

    kind: ClassVar[str] = "duckdb"
    Settings: ClassVar[type[BaseModel]] = DuckDBSettings

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        memory_limit: str = "1GB",
        threads: int = 2,
        checkpoint_threshold: str = "16MB",
        compact_rows: int = 2_000_000,
    ) -> None:
        self.path = path
        self.read_only = read_only
        if read_only and not path.exists():
            raise StoreError(f"No historian at {path}; start a node first (`genba up`).")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._options: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "threads": threads,
        }
        if not read_only:
            self._options["checkpoint_threshold"] = checkpoint_threshold
        try:
            self._con = duckdb.connect(str(path), read_only=read_only, config=self._options)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise StoreLockedError(
                    f"The historian {path} is in use by another process (a running node?). "
                    "Query the running node instead, or stop it first."
                ) from None
            raise StoreError(f"Cannot open the historian {path}: {e}") from e
        self._write_lock = threading.Lock()
        self._open_lock = threading.RLock()
        self._closed = False
        self._broken = ""  # why the connection must be opened again before the next call
        self._unsure: SampleBatch | None = None  # a failed append that may have committed
        self.applied = [] if read_only else self._migrate()
        # A file an older genba wrote, opened read-only (so not migrated), has no segments:
        # all its samples are in the hot table.
        self._segmented = not read_only or self.schema_version() >= 3
        self._file = _identity(path)
        self._last = _LastValues()
        self._load_last()
        self.compact_rows = compact_rows
        self.close_move_rows = CLOSE_MOVE_ROWS
        self.compaction = CompactionStats()
        self._maint_lock = threading.Lock()  # compaction and deletes, one at a time
        self._stop = threading.Event()
        self._due = threading.Event()
        self._compactor: threading.Thread | None = None
        if not read_only:
            with self._cursor() as cur:
                self._hot = _segments.hot_rows(cur)
            self._compactor = threading.Thread(
                target=self._compact_loop, name=f"genba-compact-{path.name}", daemon=True
            )
            self._compactor.start()
            if self._hot >= compact_rows:
                self._due.set()

    def _migrate(self) -> list[tuple[int, str]]:
        """Apply the migrations this file lacks, each in a transaction of its own."""
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        # fetchall: a result left half-read keeps its transaction open, and DuckDB then
        # refuses every checkpoint once another connection has written
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        version = int(rows[0][0]) if rows else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"historian {self.path} has schema version {version}, written by a newer genba "
                f"(this one knows up to {SCHEMA_VERSION}): upgrade genba"
            )
        applied = []
        for number, what, ddl in MIGRATIONS:
            if number <= version:
                continue
            with _segments.transaction(con):
                con.execute(ddl)
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(number)]
                )
            applied.append((number, what))
            if version:  # a new file gets them all: nothing to report
                log.info("historian %s: applied migration %d: %s", self.path, number, what)
        return applied

    def schema_version(self) -> int:
        with self._cursor() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, data_dir: Path, read_only: bool) -> Self:
        try:
            opts = DuckDBSettings.model_validate(settings.backend_options())
        except Exception as e:
            raise ConfigError(f"[store] options for kind 'duckdb': {e}", key="store") from e
        path = opts.path if opts.path.is_absolute() else data_dir / opts.path
        return cls(
            path,
            read_only=read_only,
            memory_limit=opts.memory_limit,
            threads=opts.threads,
            checkpoint_threshold=opts.checkpoint_threshold,
            compact_rows=opts.compact_rows,
        )

    @contextlib.contextmanager
    def _cursor(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own per call: DuckDB connections are not shared between threads.

        A failure of a write, or any fatal one, marks the connection broken (see the module
        docstring); every failure is raised as :class:`StoreError`, naming the file."""
        if not self.read_only:
            self._check_file(write=write)
        cur = None
        try:
            cur = self._con.cursor()
            yield cur
        except duckdb.Error as e:
            if write or isinstance(e, duckdb.FatalException):
                self._broken = str(e).splitlines()[0]
            raise StoreError(f"historian {self.path}: {str(e).splitlines()[0]}") from e
        finally:
            if cur is not None:
                cur.close()

    def _check_file(self, *, write: bool) -> None:
        """Open the file again if the last write broke the connection; before a write, refuse
        when the file is no longer the one open (see the module docstring)."""
        with self._open_lock:
            if write and not self._broken and _identity(self.path) != self._file:
                self._broken = f"the file {self.path} is gone"
            if self._broken:
                self._reopen()

    def _reopen(self) -> None:
        if _identity(self.path) is None:
            raise StoreError(
                f"historian {self.path}: {self._broken}; the file is not there (data dir "
                "removed or unmounted?): mount or restore it, the node goes on by itself"
            )
        with contextlib.suppress(duckdb.Error):
            self._con.close()  # an invalidated database must be closed before it is opened
        try:
            self._con = duckdb.connect(str(self.path), config=self._options)
        except duckdb.Error as e:
            raise StoreError(f"historian {self.path}: cannot open it again: {e}") from e
        self._file = _identity(self.path)
        self._broken = ""
        if self._unsure is not None:  # it may have committed: what the file holds counts
            # Looked up at every reopen until an append succeeds: one made while the disk is
            # still read-only may not see it yet (another thread's write can reopen first).
            batch = self._unsure
            ids = np.unique(batch.tag_ids).tolist()
            cols = self._samples(
                f"{_segments.NEWEST} FROM @samples "
                "WHERE tag_id IN (SELECT unnest($ids)) AND ts_ns >= $t GROUP BY tag_id",
                {"ids": ids, "t": int(batch.ts_ns.min())},
            )
            self._last.update(
                SampleBatch.from_columns(
                    tag_ids=cols["tag_id"], ts_ns=cols["ts"], values=cols["v"], quality=cols["q"]
                )
            )
        log.info("historian %s opened again after a failed write", self.path)

    @contextlib.contextmanager
    def _snapshot(
        self, span: TimeRange | None = None, *, hot_only: bool = False
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A cursor and the relation that holds the samples (the hot tables and the segments
        that meet ``span``; the hot tables only with ``hot_only``), in one transaction with
        the list of segments it was made from (see _segments)."""
        with self._cursor() as cur:
            if not self._segmented:  # a file of an older genba, read-only: all of it is hot
                yield cur, "samples"
                return
            with _segments.transaction(cur):
                yield cur, _segments.source(cur, span, hot_only=hot_only)

    def _samples(
        self, sql: str, params: object = None, span: TimeRange | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """``sql`` over the samples, named ``@samples`` in it (see :meth:`_snapshot`)."""
        with self._snapshot(span) as (cur, src):
            out: dict[str, npt.NDArray[Any]] = cur.execute(
                sql.replace("@samples", src), params
            ).fetchnumpy()
        return out

    def _numpy(self, sql: str, params: object = None) -> dict[str, npt.NDArray[Any]]:
        with self._cursor() as cur:
            result: dict[str, npt.NDArray[Any]] = cur.execute(sql, params).fetchnumpy()
            return result

    def _load_last(self) -> None:
        # last_values (the tags that left the hot table), overlaid by the hot tables' newest
        with self._snapshot(hot_only=True) as (cur, hot):
            sql = f"{_segments.NEWEST} FROM {hot} GROUP BY tag_id"
            if self._segmented:
                moved = "SELECT tag_id, ts_ns AS ts, value AS v, quality AS q FROM last_values"
                sql = f"{moved} UNION ALL ({sql})"
            cols = cur.execute(sql).fetchnumpy()
        self._last.update(
            SampleBatch.from_columns(
                tag_ids=cols["tag_id"], ts_ns=cols["ts"], values=cols["v"], quality=cols["q"]
            )
        )

    def close(self) -> None:
        self._stop.set()  # a merge in progress rolls back; the next open does it again
        self._due.set()
        if self._compactor is not None:
            self._compactor.join()
        with self._maint_lock, self._write_lock:  # in this order, as compact() takes them
            if self._closed:
                return
            self._closed = True
            try:
                if not self.read_only and not self._broken:
                    self._lay_out_hot()
                    self._con.execute("CHECKPOINT")
            except duckdb.Error as e:  # the write-ahead log keeps it: replayed at next open
                log.warning("historian %s: no checkpoint at close: %s", self.path, e)
            finally:
                with contextlib.suppress(duckdb.Error):
                    self._con.close()

    # -- writes -------------------------------------------------------------------------
    def append(self, batch: SampleBatch) -> None:
        if not len(batch):
            return
        table = batch.to_arrow()
        with self._write_lock:
            try:
                with self._cursor(write=True) as cur:
                    cur.register("_genba_batch", table)
                    cur.execute("INSERT INTO samples SELECT * FROM _genba_batch")
            except StoreError:
                self._unsure = batch
                raise
            self._unsure = None  # written: the file was writable, and looked up, before it
        self._last.update(batch)
        self._hot += len(batch)
        if self._hot >= self.compact_rows:
            self._due.set()

    # -- layout (see genba.historian._segments) ------------------------------------------
    def compact(self, *, everything: bool = False) -> CompactionStats:
        """Move the hot table into segments while it holds ``compact_rows`` (all of it with
        ``everything``), then merge the levels that are due. The background compactor calls
        this; so can a bulk load that wants its data laid out before it returns."""
        if self.read_only:
            raise StoreError(f"historian {self.path} is open read-only: nothing to compact")
        with self._maint_lock:
            t0 = time.perf_counter()
            try:
                with self._cursor() as cur:
                    self._compact(cur, everything)
            finally:
                self.compaction.seconds += time.perf_counter() - t0
        return self.compaction

    def _compact(self, cur: duckdb.DuckDBPyConnection, everything: bool) -> None:
        stats = self.compaction
        while True:
            for hot in [s for s in _segments.listed(cur) if s.level == _segments.HOT]:
                stats.rows_moved += _segments.move(cur, hot, self.compact_rows)
                stats.moves += 1
                self._merge_due(cur)
            self._hot = _segments.hot_rows(cur)
            if not self._hot or (self._hot < self.compact_rows and not everything):
                break
            if self._stop.is_set():
                raise Stopped
            with self._write_lock:  # no append half-way while the hot table is renamed
                _segments.freeze(cur)
        self._merge_due(cur)

    def _merge_due(self, cur: duckdb.DuckDBPyConnection) -> None:
        while due := _segments.merges_due(_segments.listed(cur)):
            level, segs = due[0]
            rows = _segments.merge(cur, segs, level, self.compact_rows, self._stop.is_set)
            self.compaction.rows_merged += rows
            self.compaction.merges += 1

    def segments(self) -> dict[str, Any]:
        """The layout now: rows in the hot table, segments and rows per level."""
        with self._cursor() as cur:
            hot = _segments.hot_rows(cur)
            listed = _segments.listed(cur)
        levels = sorted({s.level for s in listed if s.level != _segments.HOT})
        of = {lv: [s for s in listed if s.level == lv] for lv in levels}
        return {
            "hot_rows": hot + sum(s.rows for s in listed if s.level == _segments.HOT),
            "levels": [
                {"level": lv, "segments": len(of[lv]), "rows": sum(s.rows for s in of[lv])}
                for lv in levels
            ],
        }

    def _lay_out_hot(self) -> None:
        """At a clean close, a hot table of ``CLOSE_MOVE_ROWS`` or more is moved into a segment,
        so that the next open has (almost) nothing to group: the open costs ~30 ms a million
        hot samples. (The caller holds both locks; a failure only leaves it hot.)"""
        try:
            with self._cursor() as cur:
                if _segments.hot_rows(cur) < self.close_move_rows:
                    return
                _segments.move(cur, _segments.freeze(cur), self.compact_rows)
        except (StoreError, duckdb.Error) as e:
            log.warning("historian %s: hot table left as it is at close: %s", self.path, e)

    def _compact_loop(self) -> None:
        """The background compactor: runs when appends have filled the hot table."""
        while True:
            self._due.wait()
            if self._stop.is_set():
                return
            self._due.clear()
            try:
                self.compact()
            except Stopped:
                return
            except Exception as e:  # a full disk, a broken file: appends report it, we retry
                self.compaction.failures += 1
                self.compaction.last_error = str(e).splitlines()[0]
                log.warning("historian %s: compaction failed, retried in 10 s: %s", self.path, e)
                if self._stop.wait(10.0):
                    return
                self._due.set()

    def save_tags(self, tags: list[Tag]) -> None:
        if not tags:
            return
        table = pa.table(
            {
                "id": pa.array([t.id for t in tags], pa.int32()),
                "path": [t.path for t in tags],
                "unit": [t.spec.unit for t in tags],
                "description": [t.spec.description for t in tags],
                "low": pa.array([t.spec.low for t in tags], pa.float64()),
                "high": pa.array([t.spec.high for t in tags], pa.float64()),
            }
        )  # one statement for any number of tags: executemany costs ~1 ms a row in DuckDB
        with self._write_lock, self._cursor(write=True) as cur:
            cur.register("_genba_tags", table)
            cur.execute(
                "INSERT INTO tags SELECT * FROM _genba_tags ON CONFLICT (id) DO UPDATE SET "
                "path = excluded.path, unit = excluded.unit, description = excluded.description, "
                "low = excluded.low, high = excluded.high"
            )

    # -- reads --------------------------------------------------------------------------
    def load_tags(self) -> list[Tag]:
        with self._cursor() as cur:
            rows = cur.execute("SELECT * FROM tags ORDER BY id").fetchall()
        return [Tag(r[0], TagSpec(r[1], r[2], r[3], r[4], r[5])) for r in rows]

    def raw(
        self,
        tag_ids: list[TagId],
        span: TimeRange,
        *,
        limit: int | None = None,
        after: tuple[int, TagId] | None = None,
    ) -> SampleBatch:
        sql = (
            "SELECT tag_id, ts_ns, value, quality FROM @samples "
            "WHERE tag_id IN (SELECT unnest($ids)) AND ts_ns >= $start AND ts_ns < $end "
        )
        params: dict[str, object] = {"ids": tag_ids, "start": span.start_ns, "end": span.end_ns}
        if after is not None:
            sql += "AND (ts_ns > $after_ts OR (ts_ns = $after_ts AND tag_id > $after_tag)) "
            params["after_ts"], params["after_tag"] = int(after[0]), int(after[1])
        sql += "ORDER BY ts_ns, tag_id"
        if limit is not None:
            sql += " LIMIT $limit"
            params["limit"] = limit
        # a page after a cursor reads only the segments that reach past it
        reach = span
        if after is not None and span.start_ns < int(after[0]) < span.end_ns:
            reach = TimeRange(int(after[0]), span.end_ns)
        c = self._samples(sql, params, reach)
        return SampleBatch.from_columns(
            tag_ids=c["tag_id"], ts_ns=c["ts_ns"], values=c["value"], quality=c["quality"]
        )

    def raw_by_tag(self, tag_ids: list[TagId], span: TimeRange) -> SampleBatch:
        # Each segment is already sorted by (tag, time): read in its own order, no sort (a
        # sort of every row costs more than the rest of the read), the hot tables sorted;
        # then one stable pass by tag puts each tag's rows together, segment after segment.
        if not tag_ids:
            return SampleBatch.empty()
        # a plain filter keeps a table's order (IN (subquery) is a join, which does not);
        # the range lets DuckDB skip row groups by their min/max
        where = (
            "WHERE tag_id BETWEEN $lo AND $hi AND list_contains($ids, tag_id) "
            "AND ts_ns >= $start AND ts_ns < $end"
        )
        params = {
            "ids": tag_ids,
            "lo": min(tag_ids),
            "hi": max(tag_ids),
            "start": span.start_ns,
            "end": span.end_ns,
        }
        parts: list[pa.Table] = []
        with self._cursor() as cur, contextlib.ExitStack() as stack:
            if self._segmented:
                stack.enter_context(_segments.transaction(cur))
                listed = _segments.listed(cur)
            else:
                listed = []
            hot = ["samples"] + [s.table for s in listed if s.level == _segments.HOT]
            for seg in sorted(listed, key=lambda s: (s.start_ns, s.id)):
                if seg.level != _segments.HOT and seg.end_ns > span.start_ns and seg.start_ns < span.end_ns:  # fmt: skip
                    query = f"SELECT {_segments.COLUMNS} FROM {seg.table} {where}"
                    parts.append(cur.sql(query, params=params).to_arrow_table())
            query = f"SELECT * FROM {_segments.union(hot)} {where} ORDER BY tag_id, ts_ns"
            parts.append(cur.sql(query, params=params).to_arrow_table())
        return by_tag(SampleBatch.from_arrow(pa.concat_tables(parts)), tag_ids)

    def stream(
        self, tag_ids: list[TagId], span: TimeRange, *, rows: int = 1_000_000
    ) -> Iterator[SampleBatch]:
        """One sorted pass over the range (DuckDB sorts it once, spilling to disk if it must),
        ``rows`` at a time; pages of :meth:`raw` would sort every segment again for each."""
        with self._snapshot(span) as (cur, src):
            relation = cur.sql(  # a relation streams its rows; an executed result copies them
                f"SELECT tag_id, ts_ns, value, quality FROM {src} "
                "WHERE tag_id IN (SELECT unnest($ids)) AND ts_ns >= $start AND ts_ns < $end "
                "ORDER BY ts_ns, tag_id",
                params={"ids": tag_ids, "start": span.start_ns, "end": span.end_ns},
            )
            reader: pa.RecordBatchReader = relation.to_arrow_reader(rows)
            try:
                for part in reader:
                    yield SampleBatch.from_arrow(pa.Table.from_batches([part]))
            finally:
                reader.close()

    def runs(self, tag_id: TagId, span: TimeRange, *, max_gap_ns: int) -> Runs:
        # Encoded in numpy from one ordered scan: on DuckDB the SQL windows of RUNS_SQL take
        # longer than they save (bench/kpi.py --store-days, docs/performance.md).
        c = self._samples(
            f"SELECT ts_ns, CASE WHEN quality >= {int(Quality.BAD)} THEN 'NaN'::DOUBLE ELSE value END AS "
            "value FROM @samples WHERE tag_id = $tag AND ts_ns >= $start AND ts_ns < $end "
            "ORDER BY ts_ns",
            {"tag": tag_id, "start": span.start_ns, "end": span.end_ns},
            span,
        )
        ts = np.asarray(c["ts_ns"], dtype=np.int64)
        return runs_of(ts, np.asarray(c["value"], dtype=np.float64), max_gap_ns)

    def aggregate(
        self, tag_ids: list[TagId], span: TimeRange, *, every_ns: int, aggs: list[str]
    ) -> Buckets:
        check_aggs(aggs)
        exprs = ", ".join(f"{_AGG_SQL[a]} AS {a}" for a in aggs)
        sql = (
            f"SELECT tag_id, (ts_ns // $every) * $every AS bucket_ns, {exprs} FROM @samples "
            "WHERE tag_id IN (SELECT unnest($ids)) AND ts_ns >= $start AND ts_ns < $end "
            f"AND quality < {int(Quality.BAD)} GROUP BY ALL ORDER BY tag_id, bucket_ns"
        )
        c = self._samples(
            sql,
            {"ids": tag_ids, "start": span.start_ns, "end": span.end_ns, "every": every_ns},
            span,
        )
        columns: dict[str, npt.NDArray[np.float64]] = {
            a: np.asarray(c[a], dtype=np.float64) for a in aggs
        }
        return Buckets(
            np.asarray(c["tag_id"], dtype=np.int32),
            np.asarray(c["bucket_ns"], dtype=np.int64),
            columns,
        )

    def last(self, tag_ids: list[TagId] | None = None) -> SampleBatch:
        if not self.read_only and self._broken:  # reopen first: a failed write may have
            self._check_file(write=False)  # committed, and the writer's dedup asks this
        return self._last.get(tag_ids)

    def delete_before(self, tag_ids: list[TagId], before_ns: int) -> int:
        if not tag_ids:
            return 0
        # The compaction lock first: a merge may take a while, and appends must not wait.
        with (
            self._maint_lock,
            self._write_lock,
            self._cursor(write=True) as cur,
            _segments.transaction(cur),
        ):
            return _segments.delete_before(cur, tag_ids, before_ns)

    def roll_up(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> None:
        rollup = self.aggregate(tag_ids, span, every_ns=every_ns, aggs=list(ROLLUP))
        if not len(rollup):
            return
        table = pa.table(
            {"every_ns": pa.array([every_ns] * len(rollup), pa.int64()),
             "tag_id": rollup.tag_ids, "bucket_ns": rollup.bucket_ns}
            | {c: rollup.columns[c] for c in ROLLUP}
        )  # fmt: skip
        with self._write_lock, self._cursor(write=True) as cur:
            cur.register("_genba_rollup", table)
            cur.execute("INSERT OR REPLACE INTO rollups SELECT * FROM _genba_rollup")

    def read_rollup(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> Buckets:
        c = self._numpy(
            "SELECT * FROM rollups WHERE every_ns = $e AND tag_id IN (SELECT unnest($ids)) "
            "AND bucket_ns >= $a AND bucket_ns < $b ORDER BY tag_id, bucket_ns",
            {"e": every_ns, "ids": tag_ids, "a": span.start_ns, "b": span.end_ns},
        )
        return Buckets(
            np.asarray(c["tag_id"], dtype=np.int32),
            np.asarray(c["bucket_ns"], dtype=np.int64),
            {k: np.asarray(c[k], dtype=np.float64) for k in ROLLUP},
        )

    def rollup_end(self, every_ns: int, tag_ids: list[TagId]) -> int | None:
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT max(bucket_ns) FROM rollups WHERE every_ns = $e "
                "AND tag_id IN (SELECT unnest($ids))",
                {"e": every_ns, "ids": tag_ids},
            ).fetchone()
        return None if not row or row[0] is None else int(row[0])

    def delete_rollup_before(self, every_ns: int, tag_ids: list[TagId], before_ns: int) -> int:
        if not tag_ids:
            return 0
        with self._write_lock, self._cursor(write=True) as cur:
            rows = cur.execute(
                "DELETE FROM rollups WHERE every_ns = $e AND tag_id IN (SELECT unnest($ids)) "
                "AND bucket_ns < $b RETURNING 1",
                {"e": every_ns, "ids": tag_ids, "b": before_ns},
            ).fetchall()
        return len(rows)

    # -- record log ---------------------------------------------------------------------
    def append_records(self, records: list[Record]) -> list[int]:
        if not records:
            return []
        bodies = [r.encoded() for r in records]
        with self._write_lock, self._cursor(write=True) as cur, _segments.transaction(cur):
            first = cur.execute(
                "SELECT nextval('record_seq') FROM range($n)", {"n": len(records)}
            ).fetchall()
            seqs = sorted(int(r[0]) for r in first)
            table = pa.table(
                {
                    "seq": pa.array(seqs, pa.int64()),
                    "kind": [r.kind for r in records],
                    "ts_ns": pa.array([r.ts_ns for r in records], pa.int64()),
                    "key": [r.key for r in records],
                    "body": bodies,
                }
            )
            cur.register("new_records", table)
            cur.execute("INSERT INTO records SELECT seq, kind, ts_ns, key, body FROM new_records")
        return seqs

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
        where, params = record_filter(kind, key, span, after_seq, "${}")
        order = "DESC" if newest_first else "ASC"
        with self._cursor() as cur:
            rows = cur.execute(
                f"SELECT seq, kind, ts_ns, key, body FROM records WHERE {where} "
                f"ORDER BY seq {order} LIMIT {check_limit(limit)}",
                params,
            ).fetchall()
        return [
            Record(kind=k, ts_ns=t, key=key_, body=json.loads(b), seq=q)
            for q, k, t, key_, b in rows
        ]

    def count(self) -> int:
        c = self._samples("SELECT count(*)::BIGINT AS n FROM @samples")
        return int(c["n"][0])


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``; None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino

"""DuckDB's layout for reading by tag: a hot table in arrival order, segments sorted by tag.

Samples arrive interleaved (every tag's newest value in one batch), and that is how an append
is cheapest to write. Read back by tag, the same order makes a query of one tag read every
tag's rows in its range: the cost of one tag over the whole history grows with *all* points.
So the store keeps:

* ``samples``, the **hot** table: appends go here, in arrival order, a transaction a batch;
* **segments**: tables ``seg_<id>``, each sorted by (tag, time). DuckDB keeps a min/max per
  column per row group (122,880 rows), so a query of one tag skips every row group of a
  segment but the one or two its rows sit in;
* the list of segments (table ``segments``: id, level, rows, time span), and ``last_values``,
  the newest sample of each tag that has left the hot table.

A read runs in one transaction that first reads the list, then the union of the hot table and
the segments whose span meets the query's: DuckDB's catalog is transactional, so a read sees
the store before or after a move or merge, never between, and every row exactly once.

**Compaction.** Once the hot table holds ``rows`` samples it is *frozen*: renamed ``hot_<id>``
(listed at level -1) and replaced by an empty ``samples``, in a moment, under the append lock.
The frozen table is then sorted into a level-0 segment and dropped, in one transaction, while
appends go on into the new hot table. When ``FAN_IN`` segments of one level exist, they are
merged into one of the next, up to ``MAX_LEVEL``, a range of tags at a time (at most ``rows``
rows sorted at once, so a merge needs the memory of one move): a tag sits in at most
``FAN_IN - 1`` segments a level, and the segments a query reads grow with the logarithm of
history. Tables are dropped, never emptied by DELETE: DuckDB 2.0 does not give back the
blocks of deleted rows of a row group written by an earlier checkpoint, and a dropped table's
blocks are free at the next checkpoint.

Opening reads ``last_values`` and groups only the hot tables, so it costs the hot table's size
(bounded by ``rows``), not history's. What a segment holds is a set of rows, not a time range:
data that arrives late (a backlog, an import of last year) is appended like any other and
moves into the next segment.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

from genba.historian._store import TimeRange

log = logging.getLogger("genba.historian")

FAN_IN = 8
"""Segments of one level merged into one of the next."""
MAX_LEVEL = 2
"""The highest level: at the default 2 M rows a move, level-2 segments hold ~128 M rows, where
a tag's rows in one segment already fill whole row groups; merging further would rewrite a
year of history to save a few row groups a query."""
HOT = -1
"""The level of a frozen hot table waiting for its move."""

COLUMNS = "tag_id, ts_ns, value, quality"
SAMPLE_COLUMNS = (
    "(tag_id INTEGER NOT NULL, ts_ns BIGINT NOT NULL, value DOUBLE NOT NULL, "
    "quality UTINYINT NOT NULL)"
)
_SPAN = "SELECT count(*) AS n, coalesce(min(ts_ns), 0) AS a, coalesce(max(ts_ns) + 1, 0) AS b"
"""A table's rows and time span [a, b), as the list of segments keeps them."""


DDL = f"""
CREATE TABLE segments (
    id INTEGER NOT NULL, level INTEGER NOT NULL, rows BIGINT NOT NULL,
    start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL
);
CREATE TABLE last_values {SAMPLE_COLUMNS};
"""
"""Migration 3 of the DuckDB file: the list of segments, and the moved tags' newest samples."""

NEWEST = (
    "SELECT tag_id, max(ts_ns) AS ts, arg_max(value, ts_ns) AS v, arg_max(quality, ts_ns) AS q "
)
"""Each tag's newest sample, as columns tag_id, ts, v, q: append ``FROM … GROUP BY tag_id``."""


@contextlib.contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT on ``cur``; ROLLBACK on any exception (a :class:`Stopped` too)."""
    cur.execute("BEGIN")
    try:
        yield
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


class Stopped(Exception):
    """The store is closing: a merge in progress is rolled back and left for the next open."""


@dataclass(frozen=True)
class Segment:
    id: int
    level: int
    rows: int
    start_ns: int
    end_ns: int

    @property
    def table(self) -> str:
        return f"hot_{self.id}" if self.level == HOT else f"seg_{self.id}"


@dataclass
class CompactionStats:
    """What compaction has done since the store opened."""

    moves: int = 0
    merges: int = 0
    rows_moved: int = 0
    rows_merged: int = 0
    seconds: float = 0.0
    failures: int = 0
    last_error: str = ""


def listed(cur: duckdb.DuckDBPyConnection) -> list[Segment]:
    rows = cur.execute("SELECT id, level, rows, start_ns, end_ns FROM segments ORDER BY id")
    return [Segment(*r) for r in rows.fetchall()]


def source(
    cur: duckdb.DuckDBPyConnection, span: TimeRange | None = None, *, hot_only: bool = False
) -> str:
    """The hot tables and the segments that meet ``span`` (all, without one; none with
    ``hot_only``), as one relation; to be read in the transaction that called this."""
    tables = ["samples"] + [
        s.table
        for s in listed(cur)
        if s.level == HOT
        or (
            not hot_only
            and (span is None or (s.end_ns > span.start_ns and s.start_ns < span.end_ns))
        )
    ]
    return union(tables)


def union(tables: Sequence[str]) -> str:
    return "(" + " UNION ALL ".join(f"SELECT {COLUMNS} FROM {t}" for t in tables) + ")"


def hot_rows(cur: duckdb.DuckDBPyConnection) -> int:
    """Samples in the hot table that appends go to."""
    row = cur.execute("SELECT count(*) FROM samples").fetchone()
    return int(row[0]) if row else 0


def freeze(cur: duckdb.DuckDBPyConnection) -> Segment:
    """Rename the hot table ``hot_<id>``, list it at level :data:`HOT` and start an empty
    one; the caller holds the append lock, so no append is half-way."""
    with transaction(cur):
        seg = _next_id(cur)
        cur.execute(f"ALTER TABLE samples RENAME TO hot_{seg}")
        cur.execute(f"CREATE TABLE samples {SAMPLE_COLUMNS}")
        rows = _list(cur, seg, HOT)
    return Segment(seg, HOT, rows, 0, 0)


def move(cur: duckdb.DuckDBPyConnection, hot: Segment, rows: int) -> int:
    """Sort the frozen hot table into level-0 segments of at most ``rows`` rows each, carry
    its tags' newest samples into ``last_values``, drop it; one transaction. The rows moved."""
    moved = 0
    with transaction(cur):
        first, last = cur.execute(f"SELECT min(rowid), max(rowid) FROM {hot.table}").fetchone() or (
            None,
            None,
        )
        if first is not None:
            for a in range(int(first), int(last) + 1, rows):
                seg = _next_id(cur)
                cur.execute(
                    f"CREATE TABLE seg_{seg} AS SELECT {COLUMNS} FROM {hot.table} "
                    f"WHERE rowid >= {a} AND rowid < {a + rows} ORDER BY tag_id, ts_ns"
                )
                moved += _list(cur, seg, 0)
            cur.execute(
                "CREATE OR REPLACE TABLE last_values AS SELECT DISTINCT ON (tag_id) "
                f"{COLUMNS} FROM (SELECT *, 0 AS src FROM last_values UNION ALL "
                f"SELECT {COLUMNS}, 1 FROM {hot.table}) ORDER BY tag_id, ts_ns DESC, src DESC"
            )
        cur.execute(f"DROP TABLE {hot.table}")
        cur.execute("DELETE FROM segments WHERE id = $id", {"id": hot.id})
    return moved


def merges_due(segments: list[Segment]) -> list[tuple[int, list[Segment]]]:
    """(level, the oldest ``FAN_IN`` segments of it) for each level that has that many."""
    due = []
    for level in range(MAX_LEVEL):
        of_level = [s for s in segments if s.level == level]
        if len(of_level) >= FAN_IN:
            due.append((level, of_level[:FAN_IN]))
    return due


def merge(
    cur: duckdb.DuckDBPyConnection,
    segments: list[Segment],
    level: int,
    pass_rows: int,
    stopping: Callable[[], bool],
) -> int:
    """Merge ``segments`` into one of ``level + 1``, a range of tags of at most ``pass_rows``
    rows at a time, in one transaction; the number of rows merged."""
    with transaction(cur):
        new = _next_id(cur)
        src = union([s.table for s in segments])
        counts = cur.execute(
            f"SELECT tag_id, count(*) AS n FROM {src} GROUP BY tag_id ORDER BY tag_id"
        ).fetchnumpy()
        cur.execute(f"CREATE TABLE seg_{new} {SAMPLE_COLUMNS}")
        for lo, hi in tag_ranges(counts["tag_id"], counts["n"], pass_rows):
            if stopping():
                raise Stopped
            cur.execute(
                f"INSERT INTO seg_{new} SELECT {COLUMNS} FROM {src} "
                f"WHERE tag_id BETWEEN {lo} AND {hi} ORDER BY tag_id, ts_ns"
            )
        for s in segments:
            cur.execute(f"DROP TABLE {s.table}")
        cur.execute(
            "DELETE FROM segments WHERE id IN (SELECT unnest($ids))",
            {"ids": [s.id for s in segments]},
        )
        return _list(cur, new, level + 1)


def tag_ranges(tag_ids: np.ndarray, counts: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """Consecutive (first, last) tag ids, each range of at most ``rows`` rows (or one tag).

    >>> tag_ranges(np.array([1, 2, 3, 7]), np.array([5, 5, 5, 20]), 10)
    [(1, 2), (3, 3), (7, 7)]
    """
    ranges: list[tuple[int, int]] = []
    start, total = 0, 0
    for i, n in enumerate(counts.tolist()):
        if total and total + n > rows:
            ranges.append((int(tag_ids[start]), int(tag_ids[i - 1])))
            start, total = i, 0
        total += n
    if len(tag_ids):
        ranges.append((int(tag_ids[start]), int(tag_ids[-1])))
    return ranges


def delete_before(cur: duckdb.DuckDBPyConnection, tag_ids: list[int], before_ns: int) -> int:
    """Delete the samples of ``tag_ids`` older than ``before_ns`` from the hot tables and the
    segments that reach back that far (and their newest samples where nothing newer is
    left); the number deleted. In the caller's transaction."""
    ids = ", ".join(str(int(t)) for t in tag_ids)
    where = f"tag_id IN ({ids}) AND ts_ns < {int(before_ns)}"
    deleted = len(cur.execute(f"DELETE FROM samples WHERE {where} RETURNING 1").fetchall())
    for s in listed(cur):
        if s.level != HOT and s.start_ns >= before_ns:
            continue
        n = len(cur.execute(f"DELETE FROM {s.table} WHERE {where} RETURNING 1").fetchall())
        if not n:
            continue
        deleted += n
        if s.level != HOT and not cur.execute(f"SELECT 1 FROM {s.table} LIMIT 1").fetchall():
            cur.execute(f"DROP TABLE {s.table}")  # emptied
            cur.execute("DELETE FROM segments WHERE id = $id", {"id": s.id})
            continue
        cur.execute(
            f"UPDATE segments SET rows = c.n, start_ns = c.a, end_ns = c.b FROM ({_SPAN} "
            f"FROM {s.table}) AS c WHERE id = {s.id}"
        )
    cur.execute(f"DELETE FROM last_values WHERE {where}")
    return deleted


def _next_id(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM segments").fetchone()
    return int(row[0]) if row else 1


def _list(cur: duckdb.DuckDBPyConnection, seg: int, level: int) -> int:
    """Add table ``seg`` of ``level`` (``seg_<seg>``, or ``hot_<seg>`` at :data:`HOT`) to the
    list, with its rows and time span; its number of rows."""
    table = Segment(seg, level, 0, 0, 0).table
    row = cur.execute(
        f"INSERT INTO segments SELECT {seg}, {level}, n, a, b FROM ({_SPAN} FROM {table}) "
        "RETURNING rows"
    ).fetchone()
    return int(row[0]) if row else 0

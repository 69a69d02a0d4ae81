"""Reading by tag as history grows: DuckDB's segments sorted by tag against arrival order.

For each size, one DuckDB store is loaded from the bus's columnar batches (100,000 samples
each, every tag once a second, time rising) with compaction held back, so the whole history
sits in the hot table in arrival order: the layout before segments, the **baseline**. It is
measured there; then the store compacts that backlog exactly as the background compactor
does on a running node (moves of ``compact_rows``, merges of full levels), and is measured
again in the **segments** layout. Same rows, same process, same run.

Per layout (medians of ``--runs``):

* (a) 1-minute buckets (avg) of one tag over the whole history (``Store.aggregate``);
* (d) 1-minute buckets of one tag over the last hour;
* open: ``DuckDBStore(path)`` to a store whose ``last()`` answers, with the history in it;
* bytes per point: the blocks DuckDB uses after a checkpoint (the file also keeps the blocks
  the moved hot rows left free, reused by the next appends; its size is printed beside).

Also the append rate (the hot path, unchanged) and the compaction rate (rows laid out per
second of compaction). ``--sizes`` in millions of points; ``--tags`` the number of tags
(the history per tag is size / tags); 1,000 M points needs ~10 GB of disk and ~25 minutes.

With ``--postgres SIZES``, the same query on a private PostgreSQL (daily partitions, a sample
every ``--pg-period-s``, so history spans days): as appended (each batch sorted by tag, one
BRIN on (tag_id, ts_ns)) against after ``compact`` rewrote the closed partitions in tag order.

    python bench/layout.py [--sizes 1,10,100] [--tags 1000] [--runs 5] [--dir DIR]
        [--postgres 10,100] [--pg-period-s 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from genba.historian import StoreSettings, TimeRange, open_store
from genba.historian.duckdb import DuckDBStore
from genba.historian.postgres import PostgresStore
from genba.testing import PostgreSQL
from genba.types import NS_PER_S, SampleBatch

BATCH = 100_000
T0 = 1_767_225_600 * NS_PER_S
MIN = 60 * NS_PER_S
HOUR = 3600 * NS_PER_S
NEVER = 10**15  # compact_rows: the hot table holds everything


def batches(tags: int, points: int, period_s: int = 1) -> Iterator[SampleBatch]:
    """Every tag once a ``period_s``, time rising, BATCH rows at a time (made as sent)."""
    rng = np.random.default_rng(0)
    for start in range(0, points, BATCH):
        k = np.arange(start, min(start + BATCH, points), dtype=np.int64)
        yield SampleBatch.from_columns(
            tag_ids=(k % tags + 1).astype(np.int32),
            ts_ns=T0 + (k // tags) * period_s * NS_PER_S,
            values=np.round(rng.normal(50.0, 5.0, len(k)), 3),
        )


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm: plans and caches, as on a running node
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def used_bytes(store: DuckDBStore) -> int:
    with store._cursor() as cur:
        cur.execute("CHECKPOINT")
        row = cur.execute("SELECT used_blocks * block_size FROM pragma_database_size()").fetchone()
    return int(row[0]) if row else 0


def measure(path: Path, tags: int, points: int, runs: int, *, keep_hot: bool) -> dict[str, float]:
    """Query, open and size figures of the store at ``path`` as it is laid out now (opened
    with compaction held back, so that nothing moves while it is measured; with
    ``keep_hot``, not even the move of the hot table at a clean close: the baseline)."""
    end = T0 + (points // tags + 1) * NS_PER_S
    store = DuckDBStore(path, compact_rows=NEVER)
    close_move = NEVER if keep_hot else store.close_move_rows
    store.close_move_rows = close_move
    tag = [tags // 2]
    out = {
        "a": median_ms(
            lambda: store.aggregate(tag, TimeRange(T0, end), every_ns=MIN, aggs=["avg"]), runs
        ),
        "d": median_ms(
            lambda: store.aggregate(tag, TimeRange(end - HOUR, end), every_ns=MIN, aggs=["avg"]),
            runs,
        ),
        "bytes": used_bytes(store) / points,
    }
    store.close()
    out["file"] = path.stat().st_size / points

    opens = []
    for _ in range(runs + 1):  # the first warms the OS's file cache
        t0 = time.perf_counter()
        s = DuckDBStore(path, compact_rows=NEVER)
        s.close_move_rows = close_move
        s.last(tag)
        opens.append(time.perf_counter() - t0)
        s.close()
    out["open"] = statistics.median(opens[1:]) * 1000
    return out


def one_size(d: Path, tags: int, points: int, runs: int, rows: int) -> dict[str, Any]:
    path = d / f"h{points}.duckdb"
    store = DuckDBStore(path, compact_rows=NEVER)
    store.close_move_rows = NEVER
    t0 = time.perf_counter()
    for b in batches(tags, points):
        store.append(b)
    append_s = time.perf_counter() - t0
    store.close()
    base = measure(path, tags, points, runs, keep_hot=True)
    store = DuckDBStore(path, compact_rows=NEVER)  # no background compactor: this call does it
    store.compact_rows = rows
    t0 = time.perf_counter()
    store.compact()
    compact_s = time.perf_counter() - t0
    layout = store.segments()
    store.close()
    seg = measure(path, tags, points, runs, keep_hot=False)
    path.unlink()
    return {
        "append": points / append_s,
        "compact": points / compact_s,
        "layout": layout,
        "base": base,
        "seg": seg,
    }


def one_size_postgres(
    pg: PostgreSQL, tags: int, points: int, runs: int, period_s: int
) -> dict[str, Any]:
    """The same on PostgreSQL: samples every ``period_s`` into daily partitions, measured as
    appended (each batch sorted by tag) and after ``compact`` rewrote the closed ones."""
    dsn = pg.create_database(f"layout{points}")
    store = open_store(
        StoreSettings(kind="postgres", dsn=dsn, partition_days=1), data_dir=Path(".")
    )
    assert isinstance(store, PostgresStore)
    t0 = time.perf_counter()
    for b in batches(tags, points, period_s):
        store.append(b)
    append_s = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    end = T0 + (points // tags + 1) * period_s * NS_PER_S
    tag = [tags // 2]

    def query() -> float:
        return median_ms(
            lambda: store.aggregate(tag, TimeRange(T0, end), every_ns=MIN, aggs=["avg"]), runs
        )

    base = query()
    t0 = time.perf_counter()
    rewritten = store.compact()
    compact_s = time.perf_counter() - t0
    seg = query()
    store.close()
    return {
        "append": points / append_s,
        "compact": points / compact_s,
        "partitions": rewritten,
        "base": base,
        "seg": seg,
    }


def print_postgres(results: dict[int, dict[str, Any]], tags: int, period_s: int) -> None:
    print(f"\nPostgreSQL (private server), {tags:,} tags every {period_s} s, daily partitions")
    print("(a) 1-min buckets of one tag over all history\n")
    print("| points | as appended (baseline) ms | closed partitions sorted ms | ratio | "
          "partitions rewritten | COPY pts/s | rewrite pts/s |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        print(
            f"| {n / 1e6:,.0f} M | {r['base']:.1f} | {r['seg']:.1f} | {r['base'] / r['seg']:.1f}× | "
            f"{r['partitions']} | {r['append']:,.0f} | {r['compact']:,.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1,10,100", help="millions of points, comma-separated")
    ap.add_argument("--tags", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compact-rows", type=int, default=2_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to build (needs free disk)")
    ap.add_argument("--postgres", default="", help="also PostgreSQL at these sizes (millions)")
    ap.add_argument("--pg-period-s", type=int, default=10, help="PostgreSQL: sample period")
    a = ap.parse_args()
    sizes = [round(float(s) * 1_000_000) for s in a.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        for n in sizes:
            results[n] = one_size(Path(tmp), a.tags, n, a.runs, a.compact_rows)
            r = results[n]
            print(f"{n:,} points: {r['layout']}", flush=True)
    print(
        f"\nDuckDB, {a.tags:,} tags at 1 Hz, compact_rows {a.compact_rows:,}; medians of {a.runs}"
    )
    print("(a) 1-min buckets of one tag over all history, (d) over the last hour; open: to "
          "last() answering\n")  # fmt: skip
    print("| points | layout | (a) ms | (d) ms | open ms | bytes/pt used (file) | "
          "append pts/s | compaction pts/s |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        for k, name in (("base", "arrival order (baseline)"), ("seg", "segments by tag")):
            m = r[k]
            rates = f"{r['append']:,.0f} | — " if k == "base" else f"— | {r['compact']:,.0f}"
            print(
                f"| {n / 1e6:,.0f} M | {name} | {m['a']:.1f} | {m['d']:.1f} | {m['open']:.1f} | "
                f"{m['bytes']:.2f} ({m['file']:.2f}) | {rates} |"
            )
        print(
            f"| | ratio baseline / segments | {r['base']['a'] / r['seg']['a']:.1f}× | "
            f"{r['base']['d'] / r['seg']['d']:.1f}× | {r['base']['open'] / r['seg']['open']:.1f}× | | | |"
        )
    if a.postgres:
        pg = PostgreSQL()
        pg.start()
        try:
            pg_results = {
                n: one_size_postgres(pg, a.tags, n, a.runs, a.pg_period_s)
                for n in (round(float(s) * 1_000_000) for s in a.postgres.split(","))
            }
        finally:
            pg.remove()
        print_postgres(pg_results, a.tags, a.pg_period_s)


if __name__ == "__main__":
    main()

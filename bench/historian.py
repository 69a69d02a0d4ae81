"""Historian benchmark: 10 million points (1,000 tags × 10,000 samples) on each backend.

For each backend, from the bus's columnar batches (100,000 samples each) on a fresh store:

* append points/s: DuckDB's batch append; PostgreSQL's binary COPY (a private PostgreSQL
  started in a temp dir); baseline SQLite ``executemany`` (rows converted to tuples, one
  transaction per batch, WAL, synchronous=NORMAL) — each including the conversion it needs;
* bytes per point on disk after the load (DuckDB file after a checkpoint; PostgreSQL's
  samples partitions with their indexes; the SQLite file);
* query latency: (a) 1-minute buckets (avg) of one tag over the whole range, (b) 1-minute
  buckets of all tags, (c) the last value of every tag.

Prints Markdown tables: medians of ``--runs`` runs, ratios to the SQLite baseline.

    python bench/historian.py [--tags 1000] [--samples 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from genba.historian import Store, StoreSettings, TimeRange, open_store
from genba.historian.duckdb import DuckDBStore
from genba.testing import PostgreSQL
from genba.types import NS_PER_S, SampleBatch

BATCH = 100_000
T0 = 1_767_225_600 * NS_PER_S
MIN = 60 * NS_PER_S


def make_batches(tags: int, samples: int) -> list[SampleBatch]:
    """Every tag sampled once a second, in time order, cut into batches of BATCH rows."""
    rng = np.random.default_rng(0)
    n = tags * samples
    k = np.arange(n, dtype=np.int64)
    tag_ids = (k % tags + 1).astype(np.int32)
    ts = T0 + (k // tags) * NS_PER_S
    values = np.round(rng.normal(50.0, 5.0, n), 3)
    return [
        SampleBatch.from_columns(
            tag_ids=tag_ids[i : i + BATCH], ts_ns=ts[i : i + BATCH], values=values[i : i + BATCH]
        )
        for i in range(0, n, BATCH)
    ]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def load(store: Store, batches: list[SampleBatch]) -> float:
    def go() -> None:
        for b in batches:
            store.append(b)

    return timed(go)


def queries(store: Store, tags: int, samples: int, runs: int) -> dict[str, float]:
    span = TimeRange(T0, T0 + samples * NS_PER_S)
    every = {"aggs": ["avg"], "every_ns": MIN}
    qs: dict[str, Callable[[], Any]] = {
        "a": lambda: store.aggregate([tags // 2], span, **every),  # type: ignore[arg-type]
        "b": lambda: store.aggregate(list(range(1, tags + 1)), span, **every),  # type: ignore[arg-type]
        "c": lambda: store.last(),
    }
    for q in qs.values():
        q()  # warm: caches and plans, as on a running node
    return {k: statistics.median(timed(q) for _ in range(runs)) * 1000 for k, q in qs.items()}


def run_duckdb(batches: list[SampleBatch], d: Path) -> tuple[float, int, DuckDBStore]:
    path = d / "h.duckdb"
    store = DuckDBStore(path)
    secs = load(store, batches)
    store.close()  # checkpoints: the file holds everything
    size = path.stat().st_size
    return secs, size, DuckDBStore(path, read_only=True)


def run_postgres(batches: list[SampleBatch], pg: PostgreSQL, name: str) -> tuple[float, int, Store]:
    dsn = pg.create_database(name)
    store = open_store(StoreSettings(kind="postgres", dsn=dsn), data_dir=Path("."))
    secs = load(store, batches)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('genba.samples')"
        ).fetchone()
    return secs, int(row[0]) if row and row[0] is not None else 0, store


def run_sqlite(batches: list[SampleBatch], d: Path) -> tuple[float, int]:
    path = d / "baseline.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE samples (tag_id INTEGER, ts_ns INTEGER, value REAL, quality INTEGER)")

    def go() -> None:
        for b in batches:
            rows = zip(
                b.tag_ids.tolist(), b.ts_ns.tolist(), b.values.tolist(), b.quality.tolist(),
                strict=True,
            )  # fmt: skip
            with con:
                con.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)

    secs = timed(go)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return secs, path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tags", type=int, default=1_000)
    ap.add_argument("--samples", type=int, default=10_000, help="per tag")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median reported)")
    a = ap.parse_args()
    batches = make_batches(a.tags, a.samples)
    points = a.tags * a.samples
    append: dict[str, list[float]] = {"duckdb": [], "postgres": [], "sqlite": []}
    size: dict[str, int] = {}
    latency: dict[str, dict[str, float]] = {}
    pg = PostgreSQL()
    pg.start()
    try:
        for run in range(a.runs):
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp)
                secs, size["duckdb"], duck = run_duckdb(batches, d)
                append["duckdb"].append(secs)
                if run == a.runs - 1:
                    latency["duckdb"] = queries(duck, a.tags, a.samples, 5)
                duck.close()
                secs, size["postgres"], pgs = run_postgres(batches, pg, f"bench{run}")
                append["postgres"].append(secs)
                if run == a.runs - 1:
                    latency["postgres"] = queries(pgs, a.tags, a.samples, 5)
                pgs.close()
                secs, size["sqlite"] = run_sqlite(batches, d)
                append["sqlite"].append(secs)
    finally:
        pg.remove()

    base = points / statistics.median(append["sqlite"])
    names = {
        "duckdb": "duckdb batch append",
        "postgres": "postgres binary COPY",
        "sqlite": "sqlite executemany (baseline)",
    }
    print(f"\nhistorian: {points:,} points ({a.tags:,} tags × {a.samples:,}), batches of {BATCH:,}")
    print(f"median of {a.runs} runs\n")
    print("| backend | append s | points/s | × baseline | bytes/point |")
    print("|---|---:|---:|---:|---:|")
    for k, name in names.items():
        secs = statistics.median(append[k])
        rate = points / secs
        print(f"| {name} | {secs:.2f} | {rate:,.0f} | {rate / base:.2f} | {size[k] / points:.1f} |")
    print("\nquery latency, median of 5 (ms): (a) 1-min buckets, one tag, whole range; "
          "(b) 1-min buckets, all tags; (c) last value, all tags")  # fmt: skip
    print("| backend | (a) ms | (b) ms | (c) ms |")
    print("|---|---:|---:|---:|")
    for k in ("duckdb", "postgres"):
        q = latency[k]
        print(f"| {k} | {q['a']:.1f} | {q['b']:.1f} | {q['c']:.1f} |")


if __name__ == "__main__":
    main()

"""Ingest benchmark: points/s from the bus into the DuckDB store, batches of 10k samples.

Paths, each measured from columnar batches in memory until the rows are committed:

* ``bus → writer → duckdb``: genba's real path (Bus, HistorianWriter, DuckDBStore);
* ``duckdb append``: the store alone, to show what the bus and writer cost;
* ``sqlite executemany`` (baseline): the same rows converted to tuples and written with
  ``executemany``, one transaction per batch, WAL with synchronous=NORMAL.

The process is pinned to one CPU core and DuckDB to one thread. Prints a Markdown table:
the median of ``--runs`` runs and the ratio to the baseline measured in the same run.

    python bench/ingest.py [--points 2000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genba.bus import Bus
from genba.historian import HistorianWriter, StoreSettings
from genba.historian.duckdb import DuckDBStore
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch, TagSpec

BATCH = 10_000
TAGS = 1_000


def make_batches(points: int) -> list[SampleBatch]:
    """``points`` samples of TAGS tags at 1 Hz, cut into batches of BATCH rows."""
    rng = np.random.default_rng(0)
    n = points // BATCH
    out = []
    for i in range(n):
        k = np.arange(i * BATCH, (i + 1) * BATCH)
        out.append(
            SampleBatch.from_columns(
                tag_ids=k % TAGS + 1,
                ts_ns=1_767_225_600 * NS_PER_S + (k // TAGS) * NS_PER_S,
                values=rng.normal(50.0, 5.0, BATCH),
            )
        )
    return out


def run_bus_writer(batches: list[SampleBatch], d: Path) -> float:
    store = DuckDBStore(d / "bus.duckdb", threads=1)
    registry = TagRegistry()
    registry.ensure([TagSpec(f"s/a/l/m/t{i}") for i in range(1, TAGS + 1)])
    bus = Bus(registry)
    writer = HistorianWriter(
        bus, store, StoreSettings(flush_max_samples=BATCH, flush_interval_ms=1000)
    )

    async def main() -> float:
        task = asyncio.create_task(writer.run())
        t0 = time.perf_counter()
        for b in batches:
            await bus.publish(b)
        bus.close()
        await task
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    n = store.count()
    store.close()
    if n != sum(map(len, batches)):
        raise RuntimeError(f"bus path stored {n} rows, expected {sum(map(len, batches))}")
    return elapsed


def run_duckdb(batches: list[SampleBatch], d: Path) -> float:
    store = DuckDBStore(d / "direct.duckdb", threads=1)
    t0 = time.perf_counter()
    for b in batches:
        store.append(b)
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


def run_sqlite(batches: list[SampleBatch], d: Path) -> float:
    con = sqlite3.connect(d / "baseline.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE samples (tag_id INTEGER, ts_ns INTEGER, value REAL, quality INTEGER)")
    t0 = time.perf_counter()
    for b in batches:
        rows = zip(
            b.tag_ids.tolist(), b.ts_ns.tolist(), b.values.tolist(), b.quality.tolist(), strict=True
        )
        with con:
            con.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


PATHS: dict[str, Callable[[list[SampleBatch], Path], float]] = {
    "bus → writer → duckdb": run_bus_writer,
    "duckdb append (store alone)": run_duckdb,
    "sqlite executemany (baseline)": run_sqlite,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=2_000_000, help="points per run")
    ap.add_argument("--runs", type=int, default=5, help="runs per path (median reported)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    batches = make_batches(args.points)
    points = sum(map(len, batches))
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(args.runs):
        for name, fn in PATHS.items():  # interleaved, so drift hits every path alike
            with tempfile.TemporaryDirectory() as d:
                times[name].append(fn(batches, Path(d)))
    base = points / statistics.median(times["sqlite executemany (baseline)"])
    print(
        f"ingest: {points:,} points in batches of {BATCH:,}, {TAGS:,} tags, one core, "
        f"median of {args.runs} runs"
    )
    print()
    print("| path | median s | points/s | × baseline |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} | {points / med:,.0f} | {points / med / base:.1f}× |")


if __name__ == "__main__":
    main()

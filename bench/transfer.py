"""Import and export at append speed: a Parquet file of history into and out of a stopped node.

The file is what a back-fill from another historian looks like: ``--points`` samples of
1,000 tags at 1 Hz (columns tag, timestamp, value, quality; zstd). Measured, each from a
fresh data dir, in-process (no interpreter start-up):

* ``genba import`` into a stopped node (``genba.cli._transfer.import_file``: read, validate
  every row, register tags, drop what is stored already, append, let compaction finish);
* the same import again: every sample is already stored and skipped (idempotence);
* ``genba export`` of all of it back to Parquet;
* baseline: ``DuckDBStore.append`` of the same samples as ready-made columnar batches of
  1,000,000 (the append path alone, with nothing to read or check).

With ``--postgres``, the same three paths into a node whose store is a private PostgreSQL
(started in a temp dir), against ``PostgresStore.append`` of the same batches.

Prints a Markdown table: medians of ``--runs``, points/s and the ratio to the baseline.

    python bench/transfer.py [--points 10000000] [--runs 3] [--postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genba.cli._transfer import export, import_file
from genba.config import parse_config
from genba.historian import Store, StoreSettings, open_store
from genba.historian.duckdb import DuckDBStore
from genba.testing import PostgreSQL
from genba.types import NS_PER_S, SampleBatch

TAGS = 1_000
T0 = 1_767_225_600 * NS_PER_S


def make_file(path: Path, points: int) -> None:
    paths = pa.array([f"plant/area/line{i % 10}/m{i % 100}/signal{i}" for i in range(TAGS)])
    with pq.ParquetWriter(
        path,
        pa.schema([("tag", pa.string()), ("timestamp", pa.timestamp("ns", tz="UTC")),
                   ("value", pa.float64()), ("quality", pa.uint8())]),
        compression="zstd",
    ) as w:  # fmt: skip
        rng = np.random.default_rng(0)
        for start in range(0, points, 1_000_000):
            k = np.arange(start, min(start + 1_000_000, points), dtype=np.int64)
            w.write_table(
                pa.table(
                    {
                        "tag": paths.take(pa.array(k % TAGS)),
                        "timestamp": pa.array(
                            T0 + (k // TAGS) * NS_PER_S, pa.timestamp("ns", "UTC")
                        ),
                        "value": np.round(rng.normal(50.0, 5.0, len(k)), 3),
                        "quality": pa.array(np.zeros(len(k), np.uint8)),
                    }
                )
            )


def config(d: Path, dsn: str = "") -> object:
    store = f'[store]\nkind = "postgres"\ndsn = "{dsn}"\n' if dsn else ""
    return parse_config(f'[node]\ndata_dir = "{d}"\nhttp = "127.0.0.1:9"\n{store}')


def baseline(d: Path, points: int, dsn: str = "") -> float:
    store: Store = (
        open_store(StoreSettings(kind="postgres", dsn=dsn), data_dir=d)
        if dsn
        else DuckDBStore(d / "base.duckdb")
    )
    rng = np.random.default_rng(0)
    batches = []
    for start in range(0, points, 1_000_000):
        k = np.arange(start, min(start + 1_000_000, points), dtype=np.int64)
        batches.append(
            SampleBatch.from_columns(
                tag_ids=(k % TAGS + 1).astype(np.int32),
                ts_ns=T0 + (k // TAGS) * NS_PER_S,
                values=np.round(rng.normal(50.0, 5.0, len(k)), 3),
            )
        )
    t0 = time.perf_counter()
    for b in batches:
        store.append(b)
    store.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--postgres", action="store_true", help="into a private PostgreSQL")
    a = ap.parse_args()
    times: dict[str, list[float]] = {"import": [], "again": [], "export": [], "base": []}
    pg = PostgreSQL() if a.postgres else None
    if pg is not None:
        pg.start()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "history.parquet"
        make_file(src, a.points)
        for run in range(a.runs):
            d = Path(tmp) / f"run{run}"
            d.mkdir()
            dsn = pg.create_database(f"transfer{run}") if pg is not None else ""
            cfg = config(d, dsn)
            for key in ("import", "again"):
                t0 = time.perf_counter()
                totals = import_file(cfg, src, 10**9)  # type: ignore[arg-type]
                times[key].append(time.perf_counter() - t0)
                want = a.points if key == "import" else 0
                assert totals["accepted"] == want, totals
            t0 = time.perf_counter()
            export(cfg, "#", None, None, "parquet", d / "out.parquet")  # type: ignore[arg-type]
            times["export"].append(time.perf_counter() - t0)
            assert pq.ParquetFile(d / "out.parquet").metadata.num_rows == a.points
            base_dsn = pg.create_database(f"base{run}") if pg is not None else ""
            times["base"].append(baseline(d, a.points, base_dsn))
    if pg is not None:
        pg.remove()
    base = a.points / statistics.median(times["base"])
    print(f"\ntransfer: {a.points:,} points ({TAGS:,} tags at 1 Hz), Parquet; median of {a.runs}\n")
    print("| path | median s | points/s | × baseline |")
    print("|---|---:|---:|---:|")
    names = {
        "import": "genba import into a stopped node",
        "again": "the same import again (all skipped)",
        "export": "genba export to Parquet",
        "base": f"{'PostgresStore' if a.postgres else 'DuckDBStore'}.append of the same "
        "batches (baseline)",
    }
    for key, name in names.items():
        secs = statistics.median(times[key])
        rate = a.points / secs
        print(f"| {name} | {secs:.2f} | {rate:,.0f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()

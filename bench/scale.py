"""Scaling benchmark: what a node costs as its tags grow, to size an edge box.

For each size in ``--tags`` a node (DuckDB store, default settings) runs the built-in
simulator with a generated plant of that many tags (5 machines a line, 14 tags a machine,
1 Hz) on the real clock: ``--warmup`` seconds, then ``--seconds`` measured. Per size it prints:

* points/s stored (the historian writer's committed count over the measured window);
* CPU: process CPU seconds per wall second over the window (1.00 = one core; DuckDB's
  threads included);
* RSS at the end, in MB;
* bytes a point: the DuckDB file and its write-ahead log over the samples stored (small runs
  carry the file's fixed overhead);
* query: 1-minute buckets (min, avg, max) of one tag over everything stored, median of 5.

No baseline is named for this table; the last column is the CPU a thousand tags cost, so the
slope (how cost grows with tags) reads down the column. How cost grows with history is
``bench/layout.py`` (1 M → 1 G points).

    python bench/scale.py [--tags 1050,10010,100100] [--seconds 30] [--warmup 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from genba.historian import TimeRange
from genba.types import NS_PER_S
from memory import plant_config, rss_mb  # bench/memory.py, beside this file


async def one_size(tags: int, seconds: float, warmup: float) -> dict[str, float]:
    from genba.config import parse_config
    from genba.node import Node

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        node = Node(parse_config(plant_config(d, tags)).with_source(d / "genba.toml"))
        running = asyncio.create_task(node.run())
        try:
            await asyncio.sleep(warmup)
            stats = node.writer.stats
            n0, c0, t0 = stats.stored_samples, time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            n1, c1, t1 = stats.stored_samples, time.process_time(), time.monotonic()
            rss = rss_mb()
            tag = 1  # the first simulated tag; every tag has the same history
            span = TimeRange(0, node.clock.now_ns() + NS_PER_S)
            lat = []
            for _ in range(5):
                q0 = time.perf_counter()
                await asyncio.to_thread(
                    node.store.aggregate, [tag], span, every_ns=60 * NS_PER_S,
                    aggs=["min", "avg", "max"],
                )  # fmt: skip
                lat.append(time.perf_counter() - q0)
            files = list((d / "data").glob("*.duckdb*"))
            size = sum(f.stat().st_size for f in files)
        finally:
            node.stop()
            await running
    return {
        "tags": len(node.registry),
        "points_s": (n1 - n0) / (t1 - t0),
        "cpu": (c1 - c0) / (t1 - t0),
        "rss": rss,
        "bytes_pt": size / max(n1, 1),
        "query_ms": statistics.median(lat) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tags", default="1050,10010,100100", help="sizes, comma-separated")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per size")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    a = ap.parse_args()
    rows = [asyncio.run(one_size(int(t), a.seconds, a.warmup)) for t in a.tags.split(",") if t]
    print(f"\nnode with the simulator, real clock, 1 Hz a tag; {a.seconds:g} s measured")
    print("| tags | points/s stored | CPU (cores) | RSS MB | bytes/point | 1-min buckets of "
          "one tag, all history (ms) | CPU per 1,000 tags |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['tags']:,.0f} | {r['points_s']:,.0f} | {r['cpu']:.3f} | {r['rss']:.0f} | "
            f"{r['bytes_pt']:.1f} | {r['query_ms']:.1f} | {r['cpu'] / r['tags'] * 1000:.4f} |"
        )


if __name__ == "__main__":
    main()

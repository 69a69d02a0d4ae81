"""Anomaly scoring cost: the PCA detector on a batch, and the node's bus path.

* ``score``: :meth:`Detector.score` of a batch of rows × 6 signals (the demo machines'
  monitored tags) — what training-time scoring and ``genba ai evaluate`` cost — by the plant
  rule (``genba.ai.PLANT_RULE``: a 180-row median; normalised per mode, two products, on the
  speed);
* ``bus path``: the node's ``ai`` component (:class:`genba.node._ai.AnomalyWatch`) watching
  ``--machines`` machines of 14 tags (the ``large`` scenario's shape: 715 machines, 10,010
  tags) — taking each bus batch of every tag's sample (``take``) and scoring a row for every
  running machine (``tick``, once every ``every_s`` in the node).

The issue names no baseline for these targets, so the last column is the ratio to the target:
1,000,000 samples/s a core through the bus path for the PCA detector. Prints a Markdown table,
medians of ``--runs``.

    python bench/ai.py [--machines 715] [--rows 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genba.ai import PLANT_RULE, Detector, make_detector
from genba.ai._registry import save_version
from genba.bus import Bus
from genba.clock import RealClock
from genba.config import parse_config
from genba.historian.duckdb import DuckDBStore
from genba.node._ai import AnomalyWatch
from genba.tags import TagRegistry
from genba.types import SampleBatch, TagSpec

TARGET = 1_000_000
SIGNALS = ["motor_current", "pressure", "process_temperature", "speed", "temperature", "vibration"]
OTHERS = ["state", "reason", "product", "good_count", "reject_count", "energy", "speed_sp", "temperature_sp"]  # fmt: skip


def normal(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (rows, 2))
    mix = np.array([[1.0, 0.2, 0.1, 0.9, 0.3, 0.5], [0.1, 1.0, 0.6, 0.0, 0.8, 0.2]])
    return np.asarray(base @ mix + rng.normal(0, 0.1, (rows, 6)) + 50)


def plant_detector() -> Detector:
    """A PCA detector by the plant rule, fitted on two products' rows, normalised on speed."""
    x = normal(2000)
    return make_detector("pca", **PLANT_RULE, conditions="speed").fit(x, SIGNALS, mode=(np.arange(2000) % 2 + 1).astype(np.float64))  # fmt: skip


def median_s(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def bus_path(machines: int, runs: int) -> tuple[float, float, int]:
    """CPU seconds of one ``take`` of every tag's sample and of one ``tick``, and the tags."""
    paths = [f"plant/hall/line{m // 5:03d}/m{m % 5}" for m in range(machines)]
    text = "".join(f'[[machine]]\npath = "{p}"\n' for p in paths)
    text += '[[model]]\nname = "watch"\nmachines = "plant/#"\nevery_s = 10\nretrain_days = 0\n'
    config = parse_config(text)
    reg = TagRegistry()
    specs = [TagSpec(f"{p}/{n}") for p in paths for n in [*SIGNALS, *OTHERS]]
    ids = np.array([t.id for t in reg.ensure(specs)], dtype=np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        det = plant_detector()
        for p in paths:  # one trained version a machine (the same model: cost is what counts)
            save_version(store, "watch", p, det, trained_from_ns=0, trained_to_ns=1, rows=2000, metrics={}, now_ns=1, mode="product")  # fmt: skip
        watch = AnomalyWatch(config.model, list(config.machine), store=store, bus=Bus(reg), registry=reg, clock=RealClock(), alarms=None)  # fmt: skip
        store.close()
    rows = normal(100, seed=1)
    per_machine = np.concatenate([rows[0], [1.0, 0, 1, 0, 0, 0, 50, 50]])  # running
    values = np.tile(per_machine, machines)
    batch = SampleBatch.from_columns(tag_ids=ids, ts_ns=np.full(len(ids), 1), values=values)
    window = int(det.params["window"])
    for _ in range(window):  # fill every window so each tick scores every machine
        watch.take(batch)
        asyncio.run(watch.tick(1))
    take = median_s(lambda: watch.take(batch), runs * 20)
    tick = median_s(lambda: asyncio.run(watch.tick(2)), runs)
    return take, tick, len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=715)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    det = plant_detector()
    x = normal(args.rows, seed=2)
    modes = np.arange(args.rows) % 2 + 1.0
    score_s = median_s(lambda: det.score(x, mode=modes), args.runs)
    take_s, tick_s, tags = bus_path(args.machines, args.runs)
    n = args.rows * len(SIGNALS)
    print(
        f"CPU seconds (process time), median of {args.runs}; {args.machines} machines, {tags:,} tags\n"
    )
    print("| operation | samples | CPU s | samples/s | × target |")
    print("|---|---:|---:|---:|---:|")
    print(f"| PCA score, {args.rows:,} rows × 6 signals | {n:,} | {score_s:.3f} | {n / score_s:,.0f} | {n / score_s / TARGET:.1f} |")  # fmt: skip
    print(f"| bus path: take a batch of every tag | {tags:,} | {take_s:.5f} | {tags / take_s:,.0f} | {tags / take_s / TARGET:.1f} |")  # fmt: skip
    print(f"| bus path: one tick, a row a machine scored | {args.machines * len(SIGNALS):,} | {tick_s:.4f} | {args.machines * len(SIGNALS) / tick_s:,.0f} | {args.machines * len(SIGNALS) / tick_s / TARGET:.2f} |")  # fmt: skip
    share = take_s + tick_s / 10  # at 1 Hz a tag: a batch of every tag a second, a tick every 10 s
    print(
        f"\nAt 1 Hz a tag and a tick every 10 s: {share:.4f} of a core for {args.machines} machines."
    )


if __name__ == "__main__":
    main()

"""Simulator benchmark: samples/s as fast as possible, and the largest plant that holds
real time at 1 Hz per tag.

* batch: simulate ``--hours`` of a plant in one call and build the bus batch; samples/s.
* real time: step the plant one simulated second at a time, as the connector does at 1 Hz,
  and measure the CPU seconds per simulated second (the share of one core it needs).
  Plants are generated with 5 machines a line, 14 tags a machine.

No baseline is named for this target, so the last column is the ratio to the target:
1,000,000 samples/s in batch; real time for 10,000 tags within half a core.

    python bench/simulate.py [--runs 3] [--hours 2] [--steps 120]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from genba.sim import Simulator, load_scenario
from genba.sim._scenario import GeneratorSettings, Scenario
from genba.types import SampleBatch

BATCH_TARGET = 1_000_000


def plant(machines: int) -> Scenario:
    base = load_scenario("large")
    lines = max(machines // 5, 1)
    gen = GeneratorSettings(lines=lines, machines_per_line=5, site="plant", area="hall")
    return base.model_copy(update={"generator": gen})


def to_batch(sim: Simulator, ts: np.ndarray, values: np.ndarray, ids: np.ndarray) -> SampleBatch:
    n_ticks, n_tags = values.shape
    return SampleBatch.from_columns(
        tag_ids=np.tile(ids, n_ticks), ts_ns=np.repeat(ts, n_tags), values=values.ravel()
    )


def batch_run(scenario: Scenario, hours: float) -> tuple[int, float]:
    sim = Simulator(scenario, t0_ns=0)
    ids = np.arange(1, len(sim.tag_paths) + 1, dtype=np.int32)
    t = time.perf_counter()
    n = 0
    for h in range(1, int(hours) + 1):  # hour by hour, as `genba simulate --fast` does
        ts, values = sim.advance(h * 3600.0)
        n += len(to_batch(sim, ts, values, ids))
    return n, time.perf_counter() - t


def realtime_cpu_share(scenario: Scenario, steps: int) -> float:
    sim = Simulator(scenario, t0_ns=0)
    ids = np.arange(1, len(sim.tag_paths) + 1, dtype=np.int32)
    sim.advance(120.0)  # past the start-up transient
    t = time.process_time()
    for s in range(1, steps + 1):
        ts, values = sim.advance(120.0 + s)
        to_batch(sim, ts, values, ids)
    return (time.process_time() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours per batch run")
    ap.add_argument("--steps", type=int, default=120, help="1-s steps per real-time run")
    ap.add_argument("--sizes", default="715,2860,7150", help="machines per plant (real time)")
    ap.add_argument("--batch-plants", default="demo,large", help="scenarios for the batch runs")
    args = ap.parse_args()

    print(f"simulate: median of {args.runs} runs; 14 tags per machine; 1 Hz sampling")
    print()
    print("batch (as fast as possible, hour by hour), target 1,000,000 samples/s:")
    print()
    print("| plant | tags | simulated | median s | samples/s | × target |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.batch_plants.split(","):
        scenario = load_scenario(name)
        runs = [batch_run(scenario, args.hours) for _ in range(args.runs)]
        n = runs[0][0]
        med = statistics.median(r[1] for r in runs)
        tags = n // int(args.hours * 3600)
        print(
            f"| {name} | {tags:,} | {args.hours:g} h | {med:.2f} | {n / med:,.0f} "
            f"| {n / med / BATCH_TARGET:.1f}× |"
        )
    print()
    print("real time (1 s steps at 1 Hz), target 10,010 tags within half a core:")
    print()
    print("| plant | tags | CPU per simulated s | share of one core | headroom |")
    print("|---|---:|---:|---:|---:|")
    largest = 0
    for machines in (int(x) for x in args.sizes.split(",")):
        share = statistics.median(
            realtime_cpu_share(plant(machines), args.steps) for _ in range(args.runs)
        )
        tags = (machines // 5) * 5 * 14
        if share < 1.0:
            largest = max(largest, tags)
        budget = 0.5 if tags <= 10_010 else 1.0
        print(
            f"| {machines // 5 * 5:,} machines | {tags:,} | {share * 1000:.1f} ms "
            f"| {share:.1%} | {budget / share:.1f}× {'half a core' if budget == 0.5 else 'real time'} |"
        )
    print()
    print(f"largest plant measured that holds real time at 1 Hz: {largest:,} tags")


if __name__ == "__main__":
    main()

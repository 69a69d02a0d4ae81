"""Memory benchmark: a node's RSS over a simulated day.

A node (DuckDB store, the historian writer, alarms, the dashboard's live view not connected)
runs the built-in simulator with a generated plant of ``--tags`` tags (5 machines a line, 14
tags a machine, 1 Hz) on a simulated clock at ``--speed`` simulated seconds a real second,
for ``--hours`` simulated hours. Every ``--every-min`` simulated minutes it prints the node's
RSS (and DuckDB's share of it), the samples stored so far and the simulator's own history.
The baseline is the RSS after the first minute of running (wall clock), a row of its own,
measured in the same run; the last column is each row's ratio to it. Target (issue 16): the last row within 1.2× of it.

Nothing is skipped when the node falls behind the clock: the simulator publishes larger
batches and waits on the bus's bound (``[store] queue_max_samples``), so every simulated
second is simulated and stored; the "behind" column is the samples on the bus not stored yet.

DuckDB keeps the blocks it wrote in its cache up to ``[store] memory_limit`` (1 GB by
default); ``--memory-limit`` sets it, and the "of it DuckDB" column shows that share.

    python bench/memory.py [--tags 10010] [--hours 24] [--speed 200] [--every-min 60]
                           [--memory-limit 1GB]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from genba.types import NS_PER_S

TAGS_PER_MACHINE = 14


def rss_mb() -> float:
    """Resident set size of this process now (``/proc/self/statm``), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def plant_config(d: Path, tags: int, *, store: str = "", clock: str = "") -> str:
    """genba.toml text of a node in ``d`` whose simulator runs a generated plant of about
    ``tags`` tags (5 machines a line, 14 tags a machine, 1 Hz); ``store`` and ``clock``: the
    bodies of those tables. ``bench/scale.py`` uses it too."""
    lines = max(round(tags / (5 * TAGS_PER_MACHINE)), 1)
    scenario = d / "plant.toml"
    scenario.write_text(
        '[plant]\nname = "bench"\nseed = 7\nsample_rate_hz = 1.0\n\n'
        f'[generator]\nlines = {lines}\nmachines_per_line = 5\nsite = "plant"\narea = "hall"\n'
    )
    return f"""
[node]
name = "bench"
data_dir = "{d}/data"

[store]
{store}

[clock]
{clock}

[[connector]]
kind = "simulator"
name = "plant"
scenario = "{scenario}"
max_tags = {max(tags * 2, 100_000)}
"""


def duckdb_mb(node: object) -> float:
    """What DuckDB's buffer manager holds (``duckdb_memory()``), in MB; 0 on another store."""
    cursor = getattr(node.store, "_cursor", None)  # type: ignore[attr-defined]
    if cursor is None:
        return 0.0
    with cursor() as cur:
        row = cur.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    return float(row[0] or 0) / 1e6


def history_mb(node: object) -> float:
    """The simulator's own history (its event logs and energy marks), in MB."""
    sim = node.connectors[0][0].sim  # type: ignore[attr-defined]
    logs = sim.plant.logs
    cols = [
        col
        for log in (logs.state, logs.part, logs.cycle, logs.setpoint, logs.product, logs.wear)
        for col in (log.t, log.m, *log.values)
    ]
    marks = sum(v.nbytes for v in sim.sampler.energy_at_minute.values())
    return float(sum(len(c) * c.itemsize for c in cols) + marks) / 1e6


async def run(
    tags: int, hours: float, speed: float, every_min: float, memory_limit: str
) -> tuple[list[tuple[float, ...]], int]:
    from genba.config import parse_config
    from genba.node import Node

    rows: list[tuple[float, ...]] = []
    base_row = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        config = parse_config(
            plant_config(
                d,
                tags,
                store=f'memory_limit = "{memory_limit}"',
                clock=f'kind = "simulated"\nstart = 2026-01-05T00:00:00Z\nspeed = {speed}',
            )
        ).with_source(d / "genba.toml")
        node = Node(config)
        clock = node.clock
        t0 = clock.now_ns()
        running = asyncio.create_task(node.run())
        try:
            next_mark = every_min
            wall0 = time.monotonic()
            based = False  # the baseline row: after the first minute of running (wall clock)
            while True:
                await asyncio.sleep(0.2)
                sim_min = (clock.now_ns() - t0) / NS_PER_S / 60
                behind = node.bus.stats().published_samples - node.writer.stats.stored_samples
                wall = time.monotonic() - wall0
                if sim_min >= next_mark or (not based and wall >= 60):
                    rows.append((
                        sim_min / 60, wall, rss_mb(), duckdb_mb(node),
                        node.writer.stats.stored_samples, history_mb(node), behind,
                    ))  # fmt: skip
                    print("  " + " | ".join(f"{v:,.1f}" for v in rows[-1]), flush=True)
                    if not based and wall >= 60:
                        based = True
                        base_row = len(rows) - 1
                    if sim_min >= next_mark:
                        next_mark += every_min
                if sim_min >= hours * 60:
                    break
        finally:
            node.stop()
            await running
    return rows, base_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tags", type=int, default=10_010, help="simulated tags (14 a machine)")
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    ap.add_argument("--speed", type=float, default=200.0, help="simulated s per real s (most)")
    ap.add_argument("--every-min", type=float, default=60.0, help="simulated minutes a row")
    ap.add_argument(
        "--memory-limit", default="1GB", help="[store] memory_limit: DuckDB's cache at most"
    )
    a = ap.parse_args()
    print(f"node with {a.tags:,} simulated tags, {a.hours:g} simulated h, clock ≤ {a.speed:g}×")
    rows, base_row = asyncio.run(run(a.tags, a.hours, a.speed, a.every_min, a.memory_limit))
    base = rows[base_row][2]
    if rows[base_row][1] < 60:
        print("(the run was shorter than a minute: the baseline is its first row)")
    print(
        "\n| simulated h | wall s | RSS MB | of it DuckDB MB | samples stored | simulator history MB "
        "| behind | × RSS after 1 min |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for h, wall, rss, duck, stored, hist, behind in rows:
        print(f"| {h:.2f} | {wall:.0f} | {rss:.0f} | {duck:.0f} | {stored:,.0f} | {hist:.1f} | {behind:,.0f} "
              f"| {rss / base:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()

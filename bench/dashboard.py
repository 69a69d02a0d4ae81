"""Dashboard benchmark: the machine trend page over one week of 1 Hz data for a tag.

A node (in this process) holds 604,800 samples of one tag in its DuckDB store; Debian's
Chromium (Playwright, headless) opens ``/machine?path=…&start=…&end=…`` for the whole week and
the time is measured from the navigation to the page saying it is drawn and interactive
(``body[data-ready]``: data fetched, chart drawn, zoom and pan handlers attached). Baseline:
the same page drawing every raw sample (``&raw=1``), what a chart over the raw history does.
Prints a Markdown table: medians of ``--runs`` runs (each in a fresh page), and the ratio.

    python bench/dashboard.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from playwright.async_api import async_playwright

from genba.api import bind_socket, serve
from genba.config import parse_config
from genba.node import Node
from genba.types import NS_PER_S, SampleBatch, TagSpec

MACHINE = "plant/area/line1/press"
TAG = f"{MACHINE}/force"
T0 = 1_767_571_200 * NS_PER_S
WEEK = 7 * 86_400
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


async def run(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        text = (
            f'[node]\ndata_dir = "{tmp}"\nhttp = "127.0.0.1:0"\n[[machine]]\npath = "{MACHINE}"\n'
        )
        node = Node(parse_config(text).with_source(Path(tmp) / "genba.toml"))
        stop, ready = asyncio.Event(), asyncio.Event()
        urls: list[str] = []

        def on_ready(u: str) -> None:
            urls.append(u)
            ready.set()

        server = asyncio.create_task(
            serve(node, stop=stop, on_ready=on_ready, sock=bind_socket("127.0.0.1", 0))
        )
        await ready.wait()
        (tag,) = node.registry.ensure([TagSpec(TAG, unit="kN")])
        k = np.arange(WEEK, dtype=np.int64)
        values = (
            100 + 20 * np.sin(2 * np.pi * k / 86_400) + np.random.default_rng(0).normal(0, 1, WEEK)
        )
        for i in range(0, WEEK, 100_000):
            n = min(100_000, WEEK - i)
            await node.bus.publish(SampleBatch.from_columns(
                tag_ids=np.full(n, tag.id), ts_ns=T0 + k[i : i + n] * NS_PER_S, values=values[i : i + n]))  # fmt: skip
        while node.writer.stats.stored_samples < WEEK:  # noqa: ASYNC110 - a counter, no event
            await asyncio.sleep(0.05)
        a, b = T0 // 1_000_000, T0 // 1_000_000 + WEEK * 1000
        url = f"{urls[0]}/machine?path={MACHINE}&start={a}&end={b}"
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        times: dict[str, list[float]] = {"aggregates": [], "raw": []}
        points: dict[str, str | None] = {}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            for _ in range(runs + 1):  # the first round warms caches and is not counted
                for name, suffix in (("aggregates", ""), ("raw", "&raw=1")):
                    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
                    t0 = time.perf_counter()
                    await page.goto(url + suffix)
                    await page.wait_for_function(
                        "document.body.dataset.ready === '1'", timeout=120_000
                    )
                    times[name].append(time.perf_counter() - t0)
                    points[name] = await page.locator("section.trend").get_attribute("data-buckets")
                    await page.close()
            await browser.close()
        stop.set()
        await server
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    print(f"one tag, one week at 1 Hz ({WEEK:,} samples), 1920x1080, median of {runs} page loads\n")
    print("| page | points drawn | load to interactive (s) | ratio to baseline |")
    print("|---|---:|---:|---:|")
    print(
        f"| aggregates at the zoom level | {int(points['aggregates'] or 0):,} | {med['aggregates']:.3f} | {med['raw'] / med['aggregates']:.1f}x |"
    )
    print(
        f"| every raw sample (baseline) | {int(points['raw'] or 0):,} | {med['raw']:.3f} | 1.0x |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    asyncio.run(run(ap.parse_args().runs))


if __name__ == "__main__":
    main()

"""Machine trends over a week of 1 Hz data in a real browser: aggregates at the zoom level,
never the raw week; zoom and pan fetch the new window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Page

from genba.config import GenbaConfig
from genba.types import NS_PER_S, SampleBatch, TagSpec
from tests.conftest import RunningNode, wait_until
from tests.web.test_dashboard import ARTIFACTS, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.socket]  # a real browser needs a real port

MACHINE = "plant/area/line1/press"
TAG = f"{MACHINE}/force"
CONFIG = f"""
[store]
flush_interval_ms = 50

[[machine]]
path = "{MACHINE}"
  [[machine.tag]]
  name = "force"
  unit = "kN"
"""
T0 = 1_767_571_200 * NS_PER_S  # 2026-01-05T00:00Z
WEEK = 7 * 86_400


async def fill_week(rn: RunningNode, tag: str = TAG) -> None:
    (t,) = rn.node.registry.ensure([TagSpec(tag, unit="kN")])
    k = np.arange(WEEK, dtype=np.int64)
    values = 100 + 20 * np.sin(2 * np.pi * k / 86_400) + np.random.default_rng(0).normal(0, 1, WEEK)
    for i in range(0, WEEK, 100_000):
        await rn.node.bus.publish(
            SampleBatch.from_columns(
                tag_ids=np.full(min(100_000, WEEK - i), t.id),
                ts_ns=T0 + k[i : i + 100_000] * NS_PER_S,
                values=values[i : i + 100_000],
            )
        )
    await wait_until(lambda: rn.node.writer.stats.stored_samples >= WEEK, 30)


async def test_a_week_of_1_hz_data_zooms_and_pans_on_aggregates(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    rn: RunningNode = await run_node(make_config(CONFIG))
    await fill_week(rn)
    p, problems = page
    week_ms = (T0 // 1_000_000, T0 // 1_000_000 + WEEK * 1000)
    await p.goto(f"{rn.url}/machine?path={MACHINE}&start={week_ms[0]}&end={week_ms[1]}")
    await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    trend = p.locator(f'section.trend[data-tag="{TAG}"]')
    # a week in 15-minute buckets: 672 points per series, not 604,800 samples
    assert await trend.get_attribute("data-every") == "900"
    assert int(await trend.get_attribute("data-buckets") or 0) == 7 * 96
    await p.screenshot(path=ARTIFACTS / "trend-week.png")

    async def window() -> tuple[int, int]:
        url = await p.evaluate("location.search")
        q = dict(part.split("=") for part in url.lstrip("?").split("&"))
        return int(q["start"]), int(q["end"])

    await p.locator("button[data-zoom='0.5']").click()  # zoom in: half the window, finer buckets
    await p.wait_for_function(
        "document.querySelector('section.trend').dataset.every === '600'", timeout=5_000
    )
    a, b = await window()
    assert b - a == WEEK * 1000 // 2
    await p.keyboard.press("ArrowRight")  # pan a quarter week later
    await p.wait_for_function(f"new URLSearchParams(location.search).get('start') !== '{a}'")
    a2, b2 = await window()
    assert (a2 - a, b2 - b) == (WEEK * 1000 // 4, WEEK * 1000 // 4)
    # drag across 2 % of the chart: a zoom to about an hour and a half, in 5-second buckets
    box = await trend.locator(".u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await p.mouse.move(box["x"] + 0.40 * box["width"], y)
    await p.mouse.down()
    await p.mouse.move(box["x"] + 0.42 * box["width"], y, steps=5)
    await p.mouse.up()
    await p.wait_for_function(
        "Number(document.querySelector('section.trend').dataset.every) <= 10", timeout=5_000
    )
    a3, b3 = await window()
    assert a2 < a3 < b3 < b2
    assert int(await trend.get_attribute("data-buckets") or 0) <= 2000
    assert problems == []


async def test_a_relative_start_counts_from_the_node_s_now(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    # the same -15m the API and the CLI read: from now, not from the newest sample
    rn: RunningNode = await run_node(make_config(CONFIG))
    (t,) = rn.node.registry.ensure([TagSpec(TAG, unit="kN")])
    now = rn.node.clock.now_ns()
    ts = now - np.arange(3600, 0, -1, dtype=np.int64) * NS_PER_S
    await rn.node.bus.publish(
        SampleBatch.from_columns(tag_ids=np.full(3600, t.id), ts_ns=ts, values=np.ones(3600))
    )
    await wait_until(lambda: rn.node.writer.stats.stored_samples >= 3600)
    p, problems = page
    await p.goto(f"{rn.url}/machine?path={MACHINE}&start=-15m")
    await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    q = await p.evaluate("Object.fromEntries(new URLSearchParams(location.search))")
    a, b = int(q["start"]), int(q["end"])
    assert b - a == 15 * 60 * 1000
    assert abs(b - now // 1_000_000) < 5_000
    asked = rn.node.clock.now_ns() // 1_000_000
    api = (await rn.http.get(f"/api/tags/{TAG}/samples", params={"start": "-15m"})).json()
    answered = rn.node.clock.now_ns() // 1_000_000
    # the API's -15m is the same window, counted from its own now (samples every second); a
    # busy machine may take more than a second between the page and this request
    first = api["ts_ms"][0]
    assert asked - 15 * 60 * 1000 <= first <= answered - 15 * 60 * 1000 + 1_000
    assert a - 1_000 <= first
    assert problems == []

"""The line view in a real browser, over the hand-worked shift of tests/kpi/test_textbook.py:
the Gantt chart, OEE, the loss Pareto, and an operator assigning a downtime reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Page

from genba.config import GenbaConfig
from genba.types import SampleBatch, TagSpec
from tests.conftest import RunningNode, wait_until
from tests.kpi.test_textbook import CONFIG, textbook_signals
from tests.web.test_dashboard import ARTIFACTS, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.socket]  # a real browser needs a real port

RANGE = "start=2026-01-05T06:00:00Z&end=2026-01-05T14:00:00Z"


async def test_line_view_shows_the_shift_and_takes_a_downtime_reason(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    rn: RunningNode = await run_node(make_config("[store]\nflush_interval_ms = 20\n" + CONFIG))
    series = textbook_signals()
    n = 0
    for tag, (ts, v) in zip(
        rn.node.registry.ensure([TagSpec(p) for p in series]), series.values(), strict=True
    ):
        await rn.node.bus.publish(
            SampleBatch.from_columns(tag_ids=np.full(len(ts), tag.id), ts_ns=ts, values=v)
        )
        n += len(ts)
    await wait_until(lambda: rn.node.writer.stats.stored_samples == n)
    p, problems = page
    await p.goto(f"{rn.url}/line?line=s/a/line&{RANGE}")
    await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    states = await p.locator(".gantt-row rect").evaluate_all("els => els.map(e => e.dataset.state)")
    assert {"setup", "running", "down", "planned_stop", "small_stop"} <= set(states)
    assert await p.locator('[data-kpi="oee"] b').inner_text() == "65.3 %"  # 294 / 450
    assert await p.locator('[data-kpi="availability"] b').inner_text() == "85.6 %"  # 385 / 450
    pareto = await p.locator("#pareto").inner_text()
    assert "breakdown / jam" in pareto
    rows = p.locator("#downtime tbody tr")
    assert await rows.count() == 2  # the changeover and the breakdown
    ARTIFACTS.mkdir(exist_ok=True)
    await p.screenshot(path=ARTIFACTS / "line-1920x1080.png", full_page=True)

    # the operator says the breakdown was electrical; the Pareto follows
    await rows.nth(1).locator("select").select_option("32")
    await p.wait_for_function(
        "document.querySelector('#pareto').textContent.includes('breakdown / electrical')",
        timeout=10_000,
    )
    assert "breakdown / jam" not in await p.locator("#pareto").inner_text()
    assert await p.locator('[data-kpi="oee"] b').inner_text() == "65.3 %"  # a reason moves no time
    stop = (await rn.http.get(f"/api/downtime?asset=s/a/line&{RANGE}")).json()[1]
    assert (stop["reason"], stop["entered_by_operator"]) == ("electrical", True)
    await p.set_viewport_size({"width": 1024, "height": 768})
    await p.screenshot(path=ARTIFACTS / "line-tablet.png")
    assert problems == []

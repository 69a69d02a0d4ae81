"""Every page against a node running the simulated plant: real values appear, nothing fails,
nothing is fetched off the machine, and the andon colours meet WCAG AA contrast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from genba.config import GenbaConfig
from tests.conftest import RunningNode
from tests.web.test_andon import FAST
from tests.web.test_dashboard import ARTIFACTS, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.socket]  # a real browser needs a real port

LINE = "berlin/packaging/line1"

CONTRAST = """
() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+/g).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const out = {};
  for (const s of ["running", "down", "small_stop", "setup", "starved", "blocked", "idle", "planned_stop", "unknown"]) {
    const el = document.createElement("article");
    el.className = "tile"; el.dataset.state = s; el.textContent = "x";
    document.getElementById("board").append(el);
    const st = getComputedStyle(el);
    const [a, b] = [lum(st.color), lum(st.backgroundColor)].sort((x, y) => y - x);
    out[s] = (a + 0.05) / (b + 0.05);
    el.remove();
  }
  return out;
}
"""


async def test_every_page_shows_the_simulated_plant(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    rn: RunningNode = await run_node(make_config(FAST))
    p, problems = page
    await p.goto(rn.url + "/line")
    await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    assert await p.locator("#line-name").inner_text() == LINE
    assert await p.locator(".gantt-row").count() == 3
    assert await p.locator(".gantt-row rect").count() >= 3
    assert (await p.locator('[data-kpi="oee"] b').inner_text()).endswith("%")
    assert (await p.locator('[data-kpi="cost_per_good_unit"]').inner_text()).endswith("EUR")
    await p.screenshot(path=ARTIFACTS / "line-simulated.png", full_page=True)

    await p.goto(rn.url + f"/machine?path={LINE}/filler&tag=motor_current")
    await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    assert int(await p.locator("section.trend").get_attribute("data-buckets") or 0) > 0

    await p.goto(rn.url + "/andon")
    await p.wait_for_function("document.querySelectorAll('article.tile').length === 3")
    ratios = await p.evaluate(CONTRAST)
    assert min(ratios.values()) >= 4.5, ratios  # WCAG 2 AA for text
    await p.keyboard.press("Tab")
    await p.keyboard.press("Tab")
    focused = await p.evaluate(
        "document.activeElement.tagName + ' ' + (document.activeElement.className || '')"
    )
    assert focused.startswith(("A", "ARTICLE"))  # links, then the tiles, are reachable

    await p.goto(rn.url + "/alarms")
    await p.wait_for_function("document.querySelector('#alarm-list tbody') !== null")
    await p.goto(rn.url + "/")
    await p.wait_for_function("document.querySelectorAll('article.machine').length === 3")
    # the API docs render from local files: any request off this machine is a problem
    await p.goto(rn.url + "/docs")
    await p.wait_for_selector(".opblock-summary-path", timeout=15_000)
    paths = await p.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/kpi/oee" in [x.replace("\u200b", "") for x in paths]
    assert problems == []

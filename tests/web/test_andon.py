"""The andon board and the alarm list in a real browser, against a node running the
simulated plant on a fast clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize

from genba.config import GenbaConfig
from genba.node import AlarmService
from tests.conftest import RunningNode, demo_config_text, wait_until
from tests.web.test_dashboard import ARTIFACTS, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.socket]  # a real browser needs a real port

FILLER = "berlin/packaging/line1/filler"
FAST = (
    demo_config_text(rate_hz=1)
    .replace('kind = "real"', 'kind = "simulated"\nstart = 2026-01-05T05:30:00Z\nspeed = 120.0')
    # The "sends no state" alarms wait 30 s of the node's clock: at 120x that is 0.25 s of the
    # wall, less than one hiccup of a loaded CI machine, and their urgent text then took the
    # tile the test looks at. An hour of the node's clock is 30 s of the wall.
    .replace("for_s = 30\n", "for_s = 3600\n")
)  # a Monday, 06:30 in Berlin: the early shift is on


async def test_andon_board_shows_live_states_kpis_and_alarms(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    rn: RunningNode = await run_node(make_config(FAST))
    p, problems = page
    await p.goto(rn.url + "/andon")
    tiles = p.locator("article.tile")
    await p.wait_for_function("document.querySelectorAll('article.tile').length === 3")
    names = await tiles.evaluate_all("els => els.map(e => e.dataset.machine.split('/').pop())")
    assert names == ["filler", "capper", "labeler"]
    filler = p.locator(f'article.tile[data-machine="{FILLER}"]')
    await p.wait_for_function(
        "el => el.dataset.ts !== undefined", arg=await filler.element_handle(), timeout=10_000
    )
    first_ts = await filler.get_attribute("data-ts")
    await p.wait_for_function(  # live: the state sample is newer within a second or two
        "([el, ts]) => el.dataset.ts !== ts", arg=[await filler.element_handle(), first_ts],
        timeout=5_000,
    )  # fmt: skip
    state = await filler.get_attribute("data-state")
    last = (await rn.http.get(f"/api/tags/{FILLER}/state/last")).json()["value"]
    assert state in {"running", "starved", "blocked", "down", "small_stop", "setup"}
    assert last in (1, 3, 4, 6, 7, 8)
    assert await filler.locator(".product").inner_text() == "cola-0.5l"
    # OEE this shift and count against target come from /api/kpi within 10 s
    await p.wait_for_function(
        "el => el.querySelector('.oee').textContent.endsWith('%')",
        arg=await filler.element_handle(), timeout=15_000,
    )  # fmt: skip
    shown = float((await filler.locator(".oee").inner_text()).rstrip(" %"))
    assert 0 < shown <= 100
    assert "/" in await filler.locator(".count").inner_text()
    assert (await p.locator("#shift").inner_text()).endswith("early")

    # an alarm on the filler shows on its tile
    rule = {"tag": f"{FILLER}/pressure", "kind": "high", "limit": 0.5, "priority": "high",
            "message": "Filler air pressure above 0.5 bar: " + "check the supply line, " * 20}  # fmt: skip
    assert (await rn.http.post("/api/alarms", json=rule)).status_code == 200
    await p.wait_for_function(
        "el => !el.querySelector('.alarm').hidden", arg=await filler.element_handle(),
        timeout=10_000,
    )  # fmt: skip
    assert "Filler air pressure" in await filler.locator(".alarm").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await p.screenshot(path=ARTIFACTS / "andon-1920x1080.png")
    await p.set_viewport_size({"width": 1024, "height": 768})  # a tablet
    await p.screenshot(path=ARTIFACTS / "andon-tablet.png")
    # a long alarm text fits its tile (wrapped, at most three lines) on both screens
    sizes: list[ViewportSize] = [{"width": 1024, "height": 768}, {"width": 1920, "height": 1080}]
    for size in sizes:
        await p.set_viewport_size(size)
        fits = await filler.evaluate(
            """el => { const t = el.getBoundingClientRect(), a = el.querySelector('.alarm').getBoundingClientRect();
                       return a.left >= t.left && a.right <= t.right && a.bottom <= t.bottom + 1
                              && a.height <= 0.4 * t.height; }"""
        )
        assert fits, size

    # the operator acknowledges it on the alarm page
    await p.set_viewport_size({"width": 1920, "height": 1080})
    await p.goto(rn.url + "/alarms")
    row = p.locator(f'tr[data-alarm="{FILLER}/pressure:high"]')
    await row.wait_for(timeout=10_000)
    await p.fill("#user", "ana")
    await row.locator("button[data-action=ack]").click()
    await p.wait_for_function(
        f"document.querySelector('tr[data-alarm=\"{FILLER}/pressure:high\"]').dataset.state === 'acked'",
        timeout=5_000,
    )  # fmt: skip
    await wait_until(
        lambda: (
            rn.node.component(AlarmService).engine.states[f"{FILLER}/pressure:high"].state
            == "acked"
        )
    )
    history = [h["event"] for h in (await rn.http.get("/api/alarms/history")).json()]
    assert history[:2] == ["acknowledged", "activated"]
    await p.wait_for_function("document.querySelector('#alarm-history li') !== null")
    assert "(ana)" in await p.locator("#alarm-history li").first.inner_text()
    await p.screenshot(path=ARTIFACTS / "alarms-1920x1080.png")
    # keyboard: the acknowledge/shelve buttons are reachable with Tab
    await p.keyboard.press("Tab")
    assert await p.evaluate("document.activeElement.tagName") in ("A", "INPUT", "BUTTON")
    assert problems == []


STALE_CONFIG = """
[node]
http = "127.0.0.1:0"

[store]
flush_interval_ms = 20

[[machine]]
path = "s/a/l1/press"
ideal_cycle_time_s = 1.0

[[machine]]
path = "s/a/l1/oven"
ideal_cycle_time_s = 1.0
signals = { max_gap_s = 3 }
"""


async def test_andon_never_shows_a_state_nobody_vouches_for(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    from genba.types import SampleBatch, TagSpec

    rn: RunningNode = await run_node(make_config(STALE_CONFIG))
    press, oven = rn.node.registry.ensure(
        [TagSpec("s/a/l1/press/state"), TagSpec("s/a/l1/oven/state")]
    )
    now = rn.node.clock.now_ns()
    await rn.node.bus.publish(
        SampleBatch.from_columns(tag_ids=[press.id, oven.id], ts_ns=[now, now], values=[1.0, 1.0])
    )
    p, _ = page
    await p.goto(rn.url + "/andon?line=s/a/l1")
    tile = {m: p.locator(f'article.tile[data-machine="s/a/l1/{m}"]') for m in ("press", "oven")}
    for t in tile.values():
        await p.wait_for_function(
            "el => el.dataset.state === 'running'", arg=await t.element_handle(), timeout=10_000
        )
    # the press's source is lost (a Sparkplug death, a heartbeat timeout): a stale mark
    now = rn.node.clock.now_ns()
    await rn.node.bus.publish(
        SampleBatch.from_columns(
            tag_ids=[press.id], ts_ns=[now], values=[float("nan")], quality=[2]
        )
    )
    await p.wait_for_function(
        "el => el.dataset.state === 'stale'",
        arg=await tile["press"].element_handle(),
        timeout=5_000,
    )
    assert (
        (await tile["press"].locator(".tile-state").inner_text()).lower().startswith("stale since")
    )
    # the oven sends cyclically (max_gap_s = 3): silent for longer, it is no data, as in KPIs
    await p.wait_for_function(
        "el => el.dataset.state === 'no_data'",
        arg=await tile["oven"].element_handle(),
        timeout=8_000,
    )
    assert (
        (await tile["oven"].locator(".tile-state").inner_text()).lower().startswith("no data since")
    )
    await p.screenshot(path=str(ARTIFACTS / "andon-stale.png"))
    # the node goes away: the whole board says it is not live, within a few seconds
    await rn.shutdown()
    await p.wait_for_function("document.body.dataset.live === 'false'", timeout=10_000)
    assert "NOT LIVE" in await p.locator("#conn-text").inner_text()
    await p.screenshot(path=str(ARTIFACTS / "andon-not-live.png"))

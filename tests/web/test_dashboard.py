"""The dashboard in a real browser: Debian's Chromium driven by Playwright, no internet."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from genba.config import GenbaConfig
from genba.sim import SIGNALS
from genba.testing import free_port
from tests.conftest import RunningNode, demo_config_text

pytestmark = [pytest.mark.browser, pytest.mark.socket]  # a real browser needs a real port
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
# Flags from this machine's notes: no sandbox as root, and no background calls home.
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TAG = "berlin/packaging/line1/filler/motor_current"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("Debian's chromium is not installed; `./dev test` installs it.")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page whose requests may only go to this machine; anything else is recorded."""
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    async def offline(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")):
            await route.continue_()
        else:
            problems.append(f"request off this machine: {route.request.url}")
            await route.abort()

    await page.route("**/*", offline)
    yield page, problems
    await context.close()


async def test_dashboard_shows_machines_live_values_and_trends(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],
) -> None:
    rn: RunningNode = await run_node(make_config(demo_config_text(rate_hz=5)))
    p, problems = page
    await p.goto(rn.url + "/")
    value = p.locator(f'[data-tag="{TAG}"] .value')
    await p.wait_for_function(
        "el => el.dataset.ts !== undefined", arg=await value.element_handle(), timeout=10_000
    )
    first_ts = await value.get_attribute("data-ts")
    await p.wait_for_function(
        "([el, ts]) => el.dataset.ts !== ts",
        arg=[await value.element_handle(), first_ts],
        timeout=10_000,
    )
    shown = float(await value.inner_text())
    last = (await rn.http.get(f"/api/tags/{TAG}/last")).json()["value"]
    assert abs(shown - last) < 25  # a real current reading in A, not a placeholder

    machines = await p.locator("article.machine").evaluate_all(
        "els => els.map(e => e.dataset.machine)"
    )
    assert [m.rsplit("/", 1)[1] for m in machines] == ["filler", "capper", "labeler"]  # line order
    n_tags = 3 * len(SIGNALS)
    assert await p.locator(".tag").count() == n_tags
    await p.wait_for_function(
        f"document.querySelectorAll('.tag .chart canvas').length === {n_tags}"
    )
    assert await p.locator("#conn-text").inner_text() == "live"
    assert await p.locator("#node-name").inner_text() == "demo"
    state = await p.locator('[data-machine="berlin/packaging/line1/filler"]').get_attribute(
        "data-state"
    )
    assert state in {"running", "starved", "blocked", "down", "small_stop", "setup", "planned_stop"}
    assert await p.locator("[data-connector='plant-sim'] .dot.on").count() == 1
    connector = await p.locator("[data-connector='plant-sim']").inner_text()
    assert "samples" in connector
    assert "/s" in connector
    assert "last " in connector

    ARTIFACTS.mkdir(exist_ok=True)
    await p.screenshot(path=ARTIFACTS / "dashboard-1920x1080.png", full_page=True)
    await p.set_viewport_size({"width": 1024, "height": 768})  # a tablet
    await p.screenshot(path=ARTIFACTS / "dashboard-tablet.png")
    assert problems == []


async def test_the_dashboard_says_when_the_node_is_not_collecting_everything(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    page: tuple[Page, list[str]],
) -> None:
    dead_plc = (
        '[[connector]]\nkind = "modbus"\nname = "press-plc"\n'
        f"port = {free_port()}\npoll_ms = 100\ntimeout_s = 0.5\n"  # nobody listens there
        '  [[connector.register]]\n  tag = "s/a/l/press/offset"\n  address = 0\n'
    )
    rn: RunningNode = await run_node(make_config(demo_config_text(extra=dead_plc)))
    p, problems = page
    await p.goto(rn.url + "/")
    banner = p.locator("#problems")
    await banner.wait_for(state="visible", timeout=15_000)
    text = await banner.inner_text()
    assert "Node DEGRADED" in text
    assert "connector 'press-plc': not collecting" in text
    assert problems == []

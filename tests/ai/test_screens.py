"""The AI on the screen, in a real browser: the models page lists the registry's versions, a
machine's anomaly trends show the score first with its threshold, and an anomaly alarm links
to each signal's share in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from playwright.async_api import Page

from genba.cli import cli
from genba.config import load_config
from genba.types import SampleBatch
from tests.ai.test_train import plant  # noqa: F401 - fixture
from tests.conftest import RunningNode, wait_until
from tests.web.test_dashboard import ARTIFACTS, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.socket]  # a real browser needs a real port

FILLER = "berlin/packaging/line1/filler"


async def test_models_page_trends_and_the_alarm_link(
    plant: Path,  # noqa: F811
    run_node: Any,
    page: tuple[Page, list[str]],  # noqa: F811
) -> None:
    assert CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "watch"]).exit_code == 0  # fmt: skip
    rn: RunningNode = await run_node(load_config(plant))
    p, problems = page
    await p.goto(rn.url + "/models")
    try:
        await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    except Exception:
        shown = await p.locator("#error").inner_text()
        raise AssertionError(f"the models page never got ready: {problems} {shown!r}") from None
    rows = p.locator("#model-list tbody tr")
    want = {v["version"] for v in (await rn.http.get("/api/models", params={"name": "watch"})).json() if v["machine"] == FILLER}  # fmt: skip
    row = p.locator(f'tr[data-model="watch/{FILLER}"][data-version="{max(want)}"]')
    assert await row.count() == 1
    text = await row.inner_text()
    assert "pca" in text
    assert "vibration" in text
    assert "product" in text
    assert await rows.count() >= 3
    assert await row.get_attribute("data-serving") == "1"  # the first version: in service
    assert "in service" in text
    # the champion/challenger history: the first version of each machine, promoted on arrival
    first = p.locator(f'#decisions tr[data-model="watch/{FILLER}"][data-challenger="1"]')
    assert await first.count() == 1
    assert "the first version" in await first.inner_text()
    await p.screenshot(path=ARTIFACTS / "models.png", full_page=True)
    # an anomaly: the score over its threshold, vibration's share largest
    reg = rn.node.registry
    ids = [reg.get(f"{FILLER}/anomaly/{s}").id for s in ("score", "vibration", "temperature")]
    now = rn.node.clock.now_ns()
    await rn.node.bus.publish(SampleBatch.from_columns(tag_ids=np.array(ids, dtype=np.int32), ts_ns=np.full(3, now), values=np.array([2.5, 0.8, 0.2])))  # fmt: skip
    name = f"watch/{FILLER}/anomaly"

    async def fired() -> bool:
        return any(a["name"] == name and a["active"] for a in (await rn.http.get("/api/alarms")).json())  # fmt: skip

    for _ in range(100):
        if await fired():
            break
        await p.wait_for_timeout(50)
    await wait_until(lambda: rn.node.writer.stats.stored_samples > 0, 10)
    await p.goto(rn.url + "/alarms")
    link = p.locator(f'tr[data-alarm="{name}"] a[data-contributions]')
    await link.wait_for(timeout=10_000)
    await link.click()
    await p.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    charts = p.locator("section.trend")
    first = charts.first
    assert await first.get_attribute("data-tag") == f"{FILLER}/anomaly/score"
    assert await first.get_attribute("data-threshold") == "1"
    tags = [await charts.nth(i).get_attribute("data-tag") for i in range(await charts.count())]
    assert all(t is not None and t.startswith(f"{FILLER}/anomaly/") for t in tags)
    assert f"{FILLER}/anomaly/vibration" in tags
    await p.screenshot(path=ARTIFACTS / "anomaly-trends.png", full_page=True)
    assert problems == []

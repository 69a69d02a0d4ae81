"""KPI and downtime endpoints of a running node, over real sockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from genba.config import GenbaConfig
from genba.types import SampleBatch, TagSpec
from tests.conftest import RunningNode, wait_until
from tests.kpi.test_textbook import CONFIG, M, textbook_signals

RANGE = {"start": "2026-01-05T06:00:00Z", "end": "2026-01-05T14:00:00Z"}


@pytest.fixture
async def api(make_config: Callable[[str], GenbaConfig], run_node: Any) -> RunningNode:
    rn: RunningNode = await run_node(make_config("[store]\nflush_interval_ms = 20\n" + CONFIG))
    series = textbook_signals()
    tags = rn.node.registry.ensure([TagSpec(p) for p in series])
    n = 0
    for tag, (ts, v) in zip(tags, series.values(), strict=True):
        await rn.node.bus.publish(
            SampleBatch.from_columns(tag_ids=np.full(len(ts), tag.id), ts_ns=ts, values=v)
        )
        n += len(ts)
    await wait_until(lambda: rn.node.writer.stats.stored_samples == n)
    return rn


async def test_oee_endpoint_answers_the_hand_worked_shift(api: RunningNode) -> None:
    r = await api.http.get("/api/kpi/oee", params={"asset": "s/a/line", **RANGE})
    assert r.status_code == 200
    machine, line = r.json()["rows"]
    assert (machine["level"], line["level"]) == ("machine", "line")
    assert machine["oee"] == pytest.approx(294 / 450)
    assert line["constraint"] == {
        "machine": M,
        "availability": pytest.approx(385 / 450),
        "performance": pytest.approx(300 / 385),
        "quality": pytest.approx(0.98),
        "oee": pytest.approx(294 / 450),
    }
    for kind in ("losses", "reliability", "cost"):
        r = await api.http.get(f"/api/kpi/{kind}", params={"asset": M, **RANGE})
        assert r.status_code == 200, r.text
    r = await api.http.get("/api/kpi/oee", params={"asset": "nowhere", **RANGE})
    assert r.status_code == 400
    assert "No machine of genba.toml is at or under 'nowhere'" in r.json()["error"]["message"]


async def test_operator_reason_changes_the_losses(api: RunningNode) -> None:
    stops = (await api.http.get("/api/downtime", params={"asset": M, **RANGE})).json()
    assert [(s["state"], s["reason"], round(s["minutes"])) for s in stops] == [
        ("setup", "unassigned", 20),
        ("down", "jam", 45),
    ]
    down = stops[1]
    assert down["id"] == f"s.a.line.press@{down['start_ms'] * 1_000_000}"
    r = await api.http.post(f"/api/downtime/{down['id']}/reason", json={"code": 32})
    assert r.status_code == 200, r.text
    pareto = (await api.http.get("/api/kpi/losses", params={"asset": M, **RANGE})).json()["pareto"]
    assert pareto[0]["reason"] == "electrical"
    assert pareto[0]["minutes"] == pytest.approx(45)
    rel = (await api.http.get("/api/kpi/reliability", params={"asset": M, **RANGE})).json()
    assert rel["failures_by_reason"] == {
        "electrical": {"failures": 1, "minutes": pytest.approx(45)}
    }
    again = (await api.http.get("/api/downtime", params={"asset": M, **RANGE})).json()[1]
    assert (again["reason"], again["entered_by_operator"]) == ("electrical", True)
    # a later entry wins over an earlier one
    await api.http.post(f"/api/downtime/{down['id']}/reason", json={"code": 33})
    again = (await api.http.get("/api/downtime", params={"asset": M, **RANGE})).json()[1]
    assert again["reason"] == "motor_trip"


async def test_bad_reason_and_bad_id_name_the_fix(api: RunningNode) -> None:
    stops = (await api.http.get("/api/downtime", params={"asset": M, **RANGE})).json()
    r = await api.http.post(f"/api/downtime/{stops[1]['id']}/reason", json={"code": 999})
    assert r.status_code == 400
    assert "Unknown reason code 999; the reason tree has: 1 (schedule/no_shift)" in r.text
    r = await api.http.post("/api/downtime/s.a.line.press@123/reason", json={"code": 31})
    assert r.status_code == 400
    assert "No stop of s/a/line/press starts at" in r.text
    r = await api.http.post("/api/downtime/nonsense/reason", json={"code": 31})
    assert "Unknown downtime id 'nonsense'" in r.text

"""The REST and WebSocket API of a running node, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from genba.config import GenbaConfig
from genba.types import NS_PER_MS, NS_PER_S, SampleBatch
from tests.conftest import RunningNode, wait_until

CONFIG = """
[store]
flush_interval_ms = 20

[[machine]]
path = "plant/area/line1/press"
ideal_cycle_time_s = 2.0
  [[machine.tag]]
  name = "force"
  unit = "kN"
  low = 0.0
  high = 500.0
  [[machine.tag]]
  name = "temperature"
  unit = "degC"

[[machine]]
path = "plant/area/line2/oven"
  [[machine.tag]]
  name = "temperature"
  unit = "degC"
"""
FORCE = "plant/area/line1/press/force"
# Two whole minutes of 1 s samples, values 0..119, starting on a whole minute.
T0 = (time.time_ns() // (60 * NS_PER_S) - 10) * 60 * NS_PER_S
T0_MS = T0 // NS_PER_MS


@pytest.fixture
async def api(make_config: Callable[[str], GenbaConfig], run_node: Any) -> RunningNode:
    rn: RunningNode = await run_node(make_config(CONFIG))
    force = rn.node.registry.get(FORCE).id
    await rn.node.bus.publish(
        SampleBatch.from_columns(
            tag_ids=np.full(120, force),
            ts_ns=T0 + np.arange(120) * NS_PER_S,
            values=np.arange(120.0),
        )
    )
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 120)
    return rn


async def test_health_reports_node_store_and_bus(api: RunningNode) -> None:
    r = await api.http.get("/api/health")
    h = r.json()
    assert r.status_code == 200
    assert h["status"] == "ok"
    assert h["tags"] == 3
    assert h["store"]["kind"] == "duckdb"
    assert h["store"]["stored_samples"] == 120
    assert h["bus"]["subscriptions"][0]["name"] == "historian"


async def test_assets_list_machines_in_config_order(api: RunningNode) -> None:
    assets = (await api.http.get("/api/assets")).json()
    assert [(a["path"], a["line"], a["ideal_cycle_time_s"]) for a in assets] == [
        ("plant/area/line1/press", "plant/area/line1", 2.0),
        ("plant/area/line2/oven", "plant/area/line2", None),
    ]


async def test_tags_list_units_limits_and_last_value(api: RunningNode) -> None:
    tags = (await api.http.get("/api/tags")).json()
    assert [t["path"] for t in tags] == [
        FORCE,
        "plant/area/line1/press/temperature",
        "plant/area/line2/oven/temperature",
    ]
    force = tags[0]
    assert (force["unit"], force["low"], force["high"]) == ("kN", 0.0, 500.0)
    assert force["last"] == {
        "ts_ms": T0_MS + 119_000,
        "value": 119.0,
        "quality": 0,
        "stale": False,
    }
    assert tags[1]["last"] is None
    only = (await api.http.get("/api/tags", params={"pattern": "plant/+/line2/#"})).json()
    assert [t["path"] for t in only] == ["plant/area/line2/oven/temperature"]


async def test_raw_samples_are_read_back_exactly(api: RunningNode) -> None:
    r = await api.http.get(
        f"/api/tags/{FORCE}/samples", params={"start": T0_MS + 10_000, "end": T0_MS + 15_000}
    )
    d = r.json()
    assert d["ts_ms"] == [T0_MS + i * 1000 for i in range(10, 15)]
    assert d["value"] == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert d["unit"] == "kN"
    assert d["truncated"] is False
    page = (
        await api.http.get(f"/api/tags/{FORCE}/samples", params={"start": T0_MS, "limit": 7})
    ).json()
    assert len(page["value"]) == 7
    assert page["truncated"] is True


async def test_aggregates_match_hand_computed_minutes(api: RunningNode) -> None:
    r = await api.http.get(
        f"/api/tags/{FORCE}/samples",
        params={
            "start": T0_MS,
            "end": T0_MS + 120_000,
            "every": "1m",
            "agg": "avg,min,max,count,first,last",
        },
    )
    d = r.json()
    assert d["every_ms"] == 60_000
    assert d["ts_ms"] == [T0_MS, T0_MS + 60_000]
    assert d["avg"] == [29.5, 89.5]  # mean of 0..59 and of 60..119
    assert (d["min"], d["max"]) == ([0.0, 60.0], [59.0, 119.0])
    assert d["count"] == [60.0, 60.0]
    assert (d["first"], d["last"]) == ([0.0, 60.0], [59.0, 119.0])


async def test_last_value_follows_new_data(api: RunningNode) -> None:
    first = (await api.http.get(f"/api/tags/{FORCE}/last")).json()
    force = api.node.registry.get(FORCE).id
    await api.node.bus.publish(
        SampleBatch.from_columns(tag_ids=[force], ts_ns=[T0 + 500 * NS_PER_S], values=[42.0])
    )
    await wait_until(lambda: api.node.writer.stats.stored_samples == 121)
    second = (await api.http.get(f"/api/tags/{FORCE}/last")).json()
    assert first["value"] == 119.0
    assert second == {
        "path": FORCE,
        "unit": "kN",
        "ts_ms": T0_MS + 500_000,
        "value": 42.0,
        "quality": 0,
        "stale": False,
    }


@pytest.mark.parametrize(
    ("url", "status", "kind", "fragment"),
    [
        (
            "/api/tags/plant/area/line1/press/forc/samples",
            404,
            "unknown_tag",
            "Did you mean: plant/area/line1/press/force",
        ),
        ("/api/tags/nope/last", 404, "unknown_tag", "genba tags"),
        (f"/api/tags/{FORCE}/samples?start=now&end=-1h", 400, "bad_query", "is before the start"),
        (f"/api/tags/{FORCE}/samples?every=1fortnight", 400, "bad_query", "such as 500ms, 10s, 1m"),
        (
            f"/api/tags/{FORCE}/samples?every=1m&agg=median",
            400,
            "bad_query",
            "valid values are: avg",
        ),
        (
            f"/api/tags/{FORCE}/samples?every=1ms&start=-30d",
            400,
            "bad_query",
            "choose a larger interval",
        ),
        (f"/api/tags/{FORCE}/samples?start=yesterday-ish", 400, "bad_query", "ISO 8601"),
        (f"/api/tags/{FORCE}/samples?limit=many", 422, "bad_request", "parameter 'limit'"),
        (f"/api/tags/{FORCE}/samples?limit=0", 400, "bad_query", "limit must be between"),
        ("/api/tags?pattern=a/%23/b", 400, "bad_pattern", "last level"),
        ("/api/nothing", 404, "not_found", "No such endpoint"),
    ],
)
async def test_every_error_has_one_shape_and_a_fix(
    api: RunningNode, url: str, status: int, kind: str, fragment: str
) -> None:
    r = await api.http.get(url)
    assert r.status_code == status
    body = r.json()
    assert set(body) == {"error"}
    assert {"status", "type", "message"} <= set(body["error"])
    assert (body["error"]["status"], body["error"]["type"]) == (status, kind)
    assert fragment in body["error"]["message"]
    assert (await api.http.get("/api/health")).json()["status"] == "ok"  # still running


async def test_openapi_describes_the_endpoints(api: RunningNode) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    assert {
        "/api/health",
        "/api/assets",
        "/api/tags",
        "/api/tags/{path}/samples",
        "/api/tags/{path}/last",
    } <= set(spec["paths"])


async def _recv(ws: Any) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return msg


@pytest.mark.socket  # a WebSocket client connects to a real port
async def test_live_websocket_streams_only_matching_tags(api: RunningNode) -> None:
    ws_url = api.url.replace("http", "ws") + "/ws/live?pattern=plant/%2B/line1/%23"
    async with connect(ws_url) as ws:
        hello = await _recv(ws)
        assert hello["type"] == "hello"
        assert sorted(hello["tags"].values()) == [FORCE, "plant/area/line1/press/temperature"]
        reg = api.node.registry
        ids = [reg.get(FORCE).id, reg.get("plant/area/line2/oven/temperature").id]
        await api.node.bus.publish(
            SampleBatch.from_columns(
                tag_ids=ids, ts_ns=[T0 + 600 * NS_PER_S] * 2, values=[7.0, 8.0]
            )
        )
        msg = await _recv(ws)
        assert msg["type"] == "samples"
        assert msg["tag"] == [ids[0]]
        assert (msg["ts_ms"], msg["value"], msg["quality"]) == ([T0_MS + 600_000], [7.0], [0])


@pytest.mark.socket  # a WebSocket client connects to a real port
async def test_live_websocket_bad_pattern_gets_error_then_close(api: RunningNode) -> None:
    ws_url = api.url.replace("http", "ws") + "/ws/live?pattern=plant/%23/x"
    async with connect(ws_url) as ws:
        msg = await _recv(ws)
        assert msg["type"] == "error"
        assert msg["error"]["type"] == "bad_pattern"
        assert "'#' may only stand alone" in msg["error"]["message"]
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
    assert (await api.http.get("/api/health")).json()["status"] == "ok"


@pytest.mark.socket  # a WebSocket client connects to a real port
async def test_closing_a_live_socket_releases_its_subscription(api: RunningNode) -> None:
    before = len(api.node.bus.stats().subscriptions)  # the historian's and the alarms'
    async with connect(api.url.replace("http", "ws") + "/ws/live") as ws:
        await _recv(ws)
        assert len(api.node.bus.stats().subscriptions) == before + 1
    await wait_until(lambda: len(api.node.bus.stats().subscriptions) == before)


async def test_twa_resample_value_at_and_pages_through_the_api(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    rn: RunningNode = await run_node(make_config('[node]\nname = "q"\n'))
    t0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, ms
    rows = [  # 10 from -30 s, 20 from 20 s, a BAD 40 at 50 s (ignored), 0 from 80 s
        {"tag": "s/a/l/m/x", "timestamp": t0 + dt * 1000, "value": v, "quality": q}
        for dt, v, q in ((-30, 10.0, 0), (20, 20.0, 0), (50, 40.0, 2), (80, 0.0, 0))
    ]
    r = await rn.http.post("/api/ingest", json=rows)
    assert r.json()["accepted"] == 4
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 4)
    span = {"start": t0, "end": t0 + 120_000}
    b = (
        await rn.http.get(
            "/api/tags/s/a/l/m/x/samples", params=span | {"every": "1m", "agg": "avg,twa"}
        )
    ).json()
    assert b["ts_ms"] == [t0, t0 + 60_000]
    assert b["avg"] == [20.0, 0.0]
    assert b["twa"] == pytest.approx([1000 / 60, 400 / 60])
    g = (await rn.http.get("/api/tags/s/a/l/m/x/resample", params=span | {"step": "30s"})).json()
    assert g["value"] == [10.0, 20.0, 20.0, 0.0]
    g = (
        await rn.http.get(
            "/api/tags/s/a/l/m/x/resample", params=span | {"step": "30s", "method": "linear"}
        )
    ).json()
    assert g["value"][0] == pytest.approx(16.0)
    assert g["value"][3] is None  # nothing known after 80 s to draw a line to
    v = (await rn.http.get("/api/tags/s/a/l/m/x/value", params={"at": t0 + 50_000})).json()
    assert v["sample"]["value"] == 20.0
    assert v["sample"]["ts_ms"] == t0 + 20_000
    v = (await rn.http.get("/api/tags/s/a/l/m/x/value", params={"at": t0 - 31_000})).json()
    assert v["sample"] is None
    everything = {"start": t0 - 60_000, "end": t0 + 120_000, "limit": 3}
    p1 = (await rn.http.get("/api/tags/s/a/l/m/x/samples", params=everything)).json()
    assert p1["truncated"] is True
    p2 = (
        await rn.http.get("/api/tags/s/a/l/m/x/samples", params=everything | {"after": p1["next"]})
    ).json()
    assert p1["value"] + p2["value"] == [10.0, 20.0, 40.0, 0.0]
    assert p2["truncated"] is False
    assert p2["next"] is None
    bad = await rn.http.get("/api/tags/s/a/l/m/x/samples", params=everything | {"after": "x"})
    assert bad.status_code == 400
    assert "not a page cursor" in bad.text

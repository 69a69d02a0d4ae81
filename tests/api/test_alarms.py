"""Alarms on a running node: rules from genba.toml and the API, operator actions over HTTP,
notifications to a real webhook receiver and a real MQTT broker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import aiomqtt
import numpy as np
import pytest

from genba.config import GenbaConfig
from genba.node import AlarmService
from genba.types import NS_PER_S, SampleBatch
from tests.conftest import Broker, RunningNode, wait_until

TAG = "plant/area/line1/press/force"
CONFIG = """
[store]
flush_interval_ms = 20

[[machine]]
path = "plant/area/line1/press"
  [[machine.tag]]
  name = "force"
  unit = "kN"

[[alarm]]
tag = "plant/area/line1/press/force"
kind = "high"
limit = 400.0
deadband = 10.0
priority = "urgent"
message = "Press overload: stop and check the die"
"""
NAME = f"{TAG}:high"


async def feed(rn: RunningNode, values: list[float]) -> None:
    now = time.time_ns()
    tag = rn.node.registry.get(TAG).id
    await rn.node.bus.publish(
        SampleBatch.from_columns(
            tag_ids=np.full(len(values), tag),
            ts_ns=now + np.arange(len(values)) * NS_PER_S // 10,
            values=np.array(values, dtype=float),
        )
    )


async def alarm(rn: RunningNode, name: str = NAME) -> dict[str, Any]:
    alarms = (await rn.http.get("/api/alarms")).json()
    return next(a for a in alarms if a["name"] == name)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on a free port that keeps what is POSTed to it."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()
    server.server_close()


async def test_operator_acknowledges_and_shelves_over_http(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    rn: RunningNode = await run_node(make_config(CONFIG))
    await feed(rn, [350, 420, 405])  # 405: above limit − deadband, still active
    await wait_until(lambda: rn.node.component(AlarmService).engine.states[NAME].state == "unack")
    a = await alarm(rn)
    assert (a["state"], a["active"], a["priority"], a["value"]) == ("unack", True, "urgent", 405.0)
    r = await rn.http.post(f"/api/alarms/{NAME}/ack", json={"user": "ana"})
    assert r.status_code == 200, r.text
    assert (await alarm(rn))["state"] == "acked"
    r = await rn.http.post(f"/api/alarms/{NAME}/ack", json={"user": "ana"})
    assert r.status_code == 409
    assert "only an unacknowledged alarm" in r.json()["error"]["message"]
    r = await rn.http.post(f"/api/alarms/{NAME}/shelve", json={"minutes": 30, "user": "ben"})
    assert (await alarm(rn))["state"] == "shelved"
    await rn.http.post(f"/api/alarms/{NAME}/unshelve", json={})
    assert (await alarm(rn))["state"] == "unack"  # still active: announced again
    history = (await rn.http.get("/api/alarms/history")).json()
    assert [h["event"] for h in history] == [
        "unshelved", "shelved", "acknowledged", "activated"
    ]  # fmt: skip
    health = (await rn.http.get("/api/health")).json()["alarms"]
    assert (health["rules"], health["active"], health["unacknowledged"]) == (1, 1, 1)


async def test_rules_added_through_the_api_survive_a_restart(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    config = make_config(CONFIG)
    rn: RunningNode = await run_node(config)
    rule = {"tag": TAG, "kind": "low", "limit": 5.0, "name": "press-force-low"}
    r = await rn.http.post("/api/alarms", json=rule)
    assert r.status_code == 200, r.text
    assert (await rn.http.post("/api/alarms", json=rule)).status_code == 409
    bad = await rn.http.post("/api/alarms", json={"tag": TAG, "kind": "high"})
    assert bad.status_code == 422
    assert "a high alarm needs a limit" in bad.json()["error"]["message"]
    await feed(rn, [50, 2])
    await wait_until(
        lambda: rn.node.component(AlarmService).engine.states["press-force-low"].active
    )
    await rn.shutdown()
    again: RunningNode = await run_node(config)
    assert {a["name"] for a in (await again.http.get("/api/alarms")).json()} == {
        NAME, "press-force-low"
    }  # fmt: skip
    r = await again.http.delete(f"/api/alarms/{NAME}")
    assert r.status_code == 409
    assert "comes from genba.toml" in r.json()["error"]["message"]
    assert (await again.http.delete("/api/alarms/press-force-low")).status_code == 200
    # The history came through the restart: it is in the store's record log, with the rules.
    history = (await again.http.get("/api/alarms/history")).json()
    assert [(h["alarm"], h["event"]) for h in history] == [("press-force-low", "activated")]
    changes = [(r.key, sorted(r.body)) for r in again.node.store.records("alarm.rule")]
    assert changes == [("press-force-low", ["rule"]), ("press-force-low", ["removed"])]
    await again.shutdown()
    third: RunningNode = await run_node(config)  # the removal holds too
    assert {a["name"] for a in (await third.http.get("/api/alarms")).json()} == {NAME}


async def test_rules_of_an_earlier_genba_move_into_the_record_log(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    config = make_config(CONFIG)
    config.data_dir.mkdir(parents=True)
    old = [{"tag": TAG, "kind": "low", "limit": 5.0, "name": "old-low"}]
    (config.data_dir / "alarm-rules.json").write_text(json.dumps(old))
    rn: RunningNode = await run_node(config)
    assert "old-low" in {a["name"] for a in (await rn.http.get("/api/alarms")).json()}
    assert not (config.data_dir / "alarm-rules.json").exists()
    assert [r.key for r in rn.node.store.records("alarm.rule")] == ["old-low"]
    await rn.shutdown()
    again: RunningNode = await run_node(config)  # moved once, not twice
    assert [r.key for r in again.node.store.records("alarm.rule")] == ["old-low"]


async def test_notifications_reach_a_webhook_and_an_mqtt_topic(
    make_config: Callable[[str], GenbaConfig],
    run_node: Any,
    mqtt_broker: Broker,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, posted = webhook
    config = CONFIG + (
        f'\n[alarms]\nwebhook = "{url}"\nmqtt = "{mqtt_broker.host}:{mqtt_broker.port}"\n'
        'mqtt_topic = "plant/alarms"\n'
    )
    rn: RunningNode = await run_node(make_config(config))
    received: list[dict[str, Any]] = []

    async def listen() -> None:
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
            await client.subscribe("plant/alarms/#", qos=1)
            subscribed.set()
            async for message in client.messages:
                received.append({"topic": str(message.topic), **json.loads(bytes(message.payload))})

    subscribed = asyncio.Event()
    listener = asyncio.create_task(listen())
    await asyncio.wait_for(subscribed.wait(), 10)
    await feed(rn, [500, 300])
    await wait_until(lambda: len(posted) >= 2 and len(received) >= 2, 15)
    listener.cancel()
    assert [(p["event"], p["priority"], p["message"]) for p in posted] == [
        ("activated", "urgent", "Press overload: stop and check the die"),
        ("cleared", "urgent", "Press overload: stop and check the die"),
    ]
    assert [(m["topic"], m["event"]) for m in received] == [
        (f"plant/alarms/{NAME}", "activated"), (f"plant/alarms/{NAME}", "cleared")
    ]  # fmt: skip


async def test_a_rule_on_a_tag_that_does_not_exist_is_refused_with_a_did_you_mean(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    from genba.errors import ConfigError
    from genba.node import Node

    rn: RunningNode = await run_node(make_config(CONFIG))
    typo = {"tag": "plant/area/line1/press/forse", "kind": "high", "limit": 1.0}
    r = await rn.http.post("/api/alarms", json=typo)
    assert r.status_code == 400, r.text
    msg = r.json()["error"]["message"]
    assert "'plant/area/line1/press/forse', which does not exist" in msg
    assert "did you mean 'plant/area/line1/press/force'?" in msg
    assert all(a["tag"] != typo["tag"] for a in (await rn.http.get("/api/alarms")).json())
    # the same typo in genba.toml stops the node before it starts, with the same hint
    bad = CONFIG.replace(
        'tag = "plant/area/line1/press/force"', 'tag = "plant/area/line1/press/forse"'
    )
    with pytest.raises(ConfigError, match="did you mean 'plant/area/line1/press/force'"):
        Node(make_config(bad))
    # a tag no source has declared yet, and close to none: watched once it appears
    later = CONFIG.replace(
        'tag = "plant/area/line1/press/force"', 'tag = "plant/area/line2/oven/zone3"'
    )
    node = Node(make_config(later))
    try:
        assert node.component(AlarmService).health()["watching_unseen_tags"] == [
            "plant/area/line2/oven/zone3:high"
        ]
    finally:
        node.store.close()


async def test_an_absurd_rule_is_refused_and_the_node_keeps_collecting(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    # {"for_s": 1e300} once overflowed the alarm clock and stopped the node for good
    rn: RunningNode = await run_node(make_config(CONFIG))
    for bad in ({"for_s": 1e300}, {"for_s": -1}, {"message": "x" * 100_000}):
        rule = {"tag": TAG, "kind": "no_data", "for_s": 5.0} | bad
        r = await rn.http.post("/api/alarms", json=rule)
        assert r.status_code == 422, r.text
        assert next(iter(bad)) in r.text
    r = await rn.http.post("/api/alarms", json={"tag": TAG, "kind": "high", "limit": "Infinity"})
    assert r.status_code == 422, r.text
    force = rn.node.registry.get(TAG).id
    before = rn.node.writer.stats.stored_samples
    await rn.node.bus.publish(
        SampleBatch.from_columns(tag_ids=[force], ts_ns=[time.time_ns()], values=[1.0])
    )
    await wait_until(lambda: rn.node.writer.stats.stored_samples > before)
    health = (await rn.http.get("/api/health")).json()
    assert health["status"] == "ok"
    assert health["alarms"]["timer_errors"] == 0

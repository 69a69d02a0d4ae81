"""The MQTT connector against a real Mosquitto, fed by `mosquitto_pub`, read back via the API."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genba.config import GenbaConfig
from tests.conftest import Broker, RunningNode, wait_until

NOW_MS = (time.time_ns() // 10**9 - 3600) * 1000  # an hour ago, on a whole second


def config(broker: Broker, extra: str = "") -> str:
    return f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "mqtt"
name = "uns"
host = "{broker.host}"
port = {broker.port}
topics = ["plant/#"]
batch_ms = 20
{extra}
"""


async def pub(broker: Broker, topic: str, payload: str, *, qos: int = 1) -> None:
    proc = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_pub") or "mosquitto_pub",
        "-h", broker.host, "-p", str(broker.port), "-q", str(qos), "-t", topic, "-m", payload,
    )  # fmt: skip
    assert await proc.wait() == 0


async def samples(rn: RunningNode, tag: str) -> dict[str, Any]:
    r = await rn.http.get(
        f"/api/tags/{tag}/samples", params={"start": NOW_MS - 60_000, "end": NOW_MS + 60_000}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_every_payload_form_is_stored_exactly(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn: RunningNode = await run_node(make_config(config(mqtt_broker)))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    await pub(mqtt_broker, "plant/hall/l1/press/force", f'{{"value": 12.5, "timestamp": {NOW_MS}}}')
    await pub(
        mqtt_broker,
        "plant/hall/l1/press",
        f'{{"temp": 61.25, "running": true, "timestamp": {NOW_MS + 1000}}}',
    )
    await pub(
        mqtt_broker, "plant/hall/l1/oven/zone1", f"[[{NOW_MS}, 180.5], [{NOW_MS + 500}, 181.0]]"
    )
    await pub(mqtt_broker, "plant/hall/l1/oven/door", "1")
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 6)  # 1 + 2 + 2 + 1

    force = await samples(rn, "plant/hall/l1/press/force")
    assert (force["ts_ms"], force["value"]) == ([NOW_MS], [12.5])
    temp = await samples(rn, "plant/hall/l1/press/temp")
    assert (temp["ts_ms"], temp["value"]) == ([NOW_MS + 1000], [61.25])
    running = await samples(rn, "plant/hall/l1/press/running")
    assert running["value"] == [1.0]
    zone = await samples(rn, "plant/hall/l1/oven/zone1")
    assert (zone["ts_ms"], zone["value"]) == ([NOW_MS, NOW_MS + 500], [180.5, 181.0])
    door = (await rn.http.get("/api/tags/plant/hall/l1/oven/door/last")).json()
    assert door["value"] == 1.0
    assert abs(door["ts_ms"] - time.time() * 1000) < 10_000  # no timestamp: arrival time
    health = rn.node.health()["connectors"][0]
    assert (health["samples"], health["dead_letters"]) == (6, 0)


async def test_bad_messages_become_dead_letters_and_the_rest_flows(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn: RunningNode = await run_node(make_config(config(mqtt_broker, "max_payload_bytes = 100")))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    bad = {
        "plant/x/bad_json": "{nope",
        "plant/x/word": '"warm"',
        "plant/x/future": f'{{"value": 1, "timestamp": {NOW_MS + 86_400_000 * 2}}}',
        "plant/x/big": "1" * 200,
    }
    for topic, payload in bad.items():
        await pub(mqtt_broker, topic, payload)
    await pub(mqtt_broker, "plant/x/good", "5")
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 1)
    await wait_until(lambda: rn.node.health()["connectors"][0]["dead_letters"] == 4)
    body = (await rn.http.get("/api/deadletter", params={"source": "uns"})).json()
    reasons = {r["topic"]: r["reason"] for r in body["records"]}
    assert reasons["plant/x/bad_json"].startswith("not JSON")
    assert "not a number" in reasons["plant/x/word"]
    assert "in the future" in reasons["plant/x/future"]
    assert "over max_payload_bytes = 100" in reasons["plant/x/big"]
    assert body["counts"] == {"uns": 4}
    lines = (rn.node.config.data_dir / "deadletter.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert rn.node.health()["connectors"][0]["connected"] is True


async def test_reconnects_after_the_broker_restarts(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker, tmp_path: Path
) -> None:
    rn: RunningNode = await run_node(make_config(config(mqtt_broker, "reconnect_max_s = 1.0")))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    await pub(mqtt_broker, "plant/r/t", "1")
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 1)

    mqtt_broker.stop()
    await wait_until(lambda: not rn.node.health()["connectors"][0]["connected"])
    mqtt_broker.start()
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 20)
    await pub(mqtt_broker, "plant/r/t", "2")
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 2)
    health = rn.node.health()["connectors"][0]
    assert health["errors"] >= 1
    assert "MQTT" in health["last_error"]


MAPPED = """
unmapped = "ignore"

  [[connector.map]]
  topic = "plant/+/telemetry/+/#"
  tag = "berlin/{1}/{2}/{#}"
  unit = "degC"

  [[connector.map]]
  topic = "plant/legacy/+"
  tag = "berlin/legacy/{1}/value"
"""


async def test_topic_mapping_rules_make_the_tag_paths(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn: RunningNode = await run_node(make_config(config(mqtt_broker, MAPPED)))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    body = f'{{"value": 71.5, "timestamp": {NOW_MS}}}'
    await pub(mqtt_broker, "plant/hall/telemetry/press/oil/temp", body)
    await pub(mqtt_broker, "plant/legacy/p7", body)
    await pub(mqtt_broker, "plant/other/thing", body)  # no rule: ignored
    await pub(mqtt_broker, "plant/legacy/p7/extra", body)  # too deep for rule 2: ignored
    await wait_until(
        lambda: rn.node.health()["connectors"][0]["details"].get("ignored_unmapped") == 2
    )
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 2)
    got = await samples(rn, "berlin/hall/press/oil/temp")
    assert (got["ts_ms"], got["value"]) == ([NOW_MS], [71.5])
    assert rn.node.registry.get("berlin/hall/press/oil/temp").spec.unit == "degC"
    got = await samples(rn, "berlin/legacy/p7/value")
    assert (got["ts_ms"], got["value"]) == ([NOW_MS], [71.5])
    assert "plant/other/thing" not in rn.node.registry


def test_mapping_rule_errors_name_the_placeholder_and_the_fix(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    import pytest

    from genba.errors import ConfigError

    broker = Broker.__new__(Broker)
    broker.host, broker.port = "127.0.0.1", 1883
    bad = config(broker, '[[connector.map]]\ntopic = "a/+/b"\ntag = "x/{2}"')
    with pytest.raises(
        ConfigError, match=r"uses \{2\} but topic 'a/\+/b' has 1 '\+' level\(s\): use \{1\}..\{1\}"
    ):
        make_config(bad)
    bad = config(broker, '[[connector.map]]\ntopic = "a/+"\ntag = "x/{#}"')
    with pytest.raises(ConfigError, match=r"uses \{#\} but topic 'a/\+' has no '#'"):
        make_config(bad)

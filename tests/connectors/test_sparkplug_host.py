"""Sparkplug 3.0 host rules against an independent edge node (pysparkplug, run in its own
environment by ``tests/peers/spb_edge.py``) and a real Mosquitto; commands are decoded with
Eclipse Tahu's schema (sparkplug-b-packets), not genba's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import sparkplub_b_packets.core.sparkplug_b_pb2 as tahu

from genba.bus import Overflow
from genba.config import GenbaConfig
from genba.connectors.sparkplug import SparkplugConnector
from genba.types import SampleBatch
from tests.conftest import Broker, RunningNode, wait_until
from tests.connectors.test_sparkplug import _commands

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"


class Peer:
    """The pysparkplug edge node process, one JSON command a line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def do(self, op: str, **kw: Any) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"op": op} | kw) + "\n").encode())
        await self.proc.stdin.drain()
        async with asyncio.timeout(10):
            line = await self.proc.stdout.readline()
        assert json.loads(line) == {"ok": op}, line


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    if not PEER_PYTHON.exists():
        pytest.fail(f"{PEER_PYTHON} is missing: `./dev test` makes it (pysparkplug, paho-mqtt 1)")
    proc = await asyncio.create_subprocess_exec(
        str(PEER_PYTHON), str(ROOT / "tests" / "peers" / "spb_edge.py"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    yield Peer(proc)
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


def host_config(broker: Broker, group: str = "plant") -> str:
    return f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "sparkplug"
name = "spb"
host = "{broker.host}"
port = {broker.port}
group = "{group}"
batch_ms = 20
"""


async def _host(make_config: Callable[[str], GenbaConfig], run_node: Any, text: str) -> RunningNode:
    rn: RunningNode = await run_node(make_config(text))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    return rn


PRESS = [
    {"name": "speed_sp", "datatype": "INT16", "value": 5},
    {"name": "running", "datatype": "BOOLEAN", "value": True},
    {"name": "force", "datatype": "DOUBLE", "value": 12.5},
    {"name": "count", "datatype": "INT64", "value": -2},
    {"name": "offset", "datatype": "INT16", "value": -7},
]


async def _last(rn: RunningNode, tag: str) -> dict[str, Any]:
    r = await rn.http.get(f"/api/tags/{tag}/last")
    out: dict[str, Any] = r.json()
    return out


async def test_types_deaths_and_writes_with_an_independent_edge_node(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker, peer: Peer
) -> None:
    rn = await _host(make_config, run_node, host_config(mqtt_broker))
    base = "plant/hall3/press"
    await peer.do("connect", host=mqtt_broker.host, port=mqtt_broker.port, group="plant",
                  edge="hall3", metrics=[])  # fmt: skip
    await peer.do("register", device="press", metrics=PRESS)
    await wait_until(lambda: f"{base}/count" in rn.node.registry)
    await wait_until(lambda: rn.node.writer.stats.stored_samples >= len(PRESS))
    await wait_until(lambda: f"{base}/offset" in rn.node.registry)
    assert (await _last(rn, f"{base}/count"))["value"] == -2  # Int64 two's complement
    assert (await _last(rn, f"{base}/offset"))["value"] == -7  # Int16 in its own 16 bits
    assert (await _last(rn, f"{base}/running"))["value"] == 1.0

    # Values whose type is not the birth's: each a dead letter, nothing stored.
    await peer.do("raw_ddata", device="press", metrics=[
        {"name": "running", "datatype": "DOUBLE", "value": 5.0},
        {"name": "force", "datatype": "INT32", "value": 3},
        {"name": "speed_sp", "datatype": "BOOLEAN", "value": True},
        {"name": "count", "datatype": "STRING", "value": "12"},
    ])  # fmt: skip
    await wait_until(lambda: rn.node.health()["connectors"][0]["dead_letters"] >= 1)
    records = (await rn.http.get("/api/deadletter")).json()["records"]
    reason = records[-1]["reason"]
    assert "4 metric(s) refused" in reason
    assert "running: a double_value value where its birth declared Boolean" in reason
    await peer.do("update_device", device="press", metrics=[
        {"name": "running", "datatype": "BOOLEAN", "value": False},
    ])  # fmt: skip
    await wait_until(lambda: rn.node.writer.stats.stored_samples >= len(PRESS) + 1)
    running = (await rn.http.get(f"/api/tags/{base}/running/samples",
                                 params={"start": "-1h"})).json()  # fmt: skip
    assert running["value"] == [1.0, 0.0]  # never 5.0

    # A negative integer written to an Int16 metric: two's complement in int_value.
    got: list[tuple[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_commands(mqtt_broker, got, ready))
    await ready.wait()
    conn = rn.node.connectors[0][0]
    assert isinstance(conn, SparkplugConnector)
    await conn.write(f"{base}/speed_sp", -5.0)
    await wait_until(lambda: len(got) == 1)
    listener.cancel()
    topic, cmd = got[0]
    assert topic == "spBv1.0/plant/DCMD/hall3/press"
    m = cmd.metrics[0]
    assert (m.name, m.datatype) == ("speed_sp", tahu.Int16)
    assert m.int_value - (1 << 16) == -5  # two's complement in 16 bits, as pysparkplug reads it

    # DDEATH: every tag of the device is stale in /api/tags and in the live values.
    live = rn.node.bus.subscribe(f"{base}/#", name="test-live", overflow=Overflow.DROP_OLDEST)
    await peer.do("deregister", device="press")
    await wait_until(lambda: rn.node.health()["connectors"][0]["stale_tags"] == len(PRESS))
    ids = [rn.node.registry.get(f"{base}/{m['name']}").id for m in PRESS]
    await wait_until(lambda: bool((rn.node.store.last(ids).quality == 2).all()))  # stored
    for m in PRESS:
        last = await _last(rn, f"{base}/{m['name']}")
        assert (last["stale"], last["value"], last["quality"]) == (True, None, 2), last
    marks = [b for b in await live.drain(timeout=1) if isinstance(b, SampleBatch)]
    assert sum(int((b.quality == 2).sum()) for b in marks) == len(PRESS)
    tags = {t["path"]: t for t in (await rn.http.get("/api/tags")).json()}
    assert tags[f"{base}/force"]["last"]["stale"] is True
    # ...until it is born again
    await peer.do("register", device="press", metrics=PRESS)
    await wait_until(lambda: rn.node.health()["connectors"][0]["stale_tags"] == 0)
    force = rn.node.registry.get(f"{base}/force").id
    await wait_until(lambda: bool(rn.node.store.last([force]).quality[0] == 0))  # stored
    assert (await _last(rn, f"{base}/force"))["stale"] is False


async def _state(broker: Broker, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with aiomqtt.Client(broker.host, broker.port) as sub:
        await sub.subscribe("spBv1.0/STATE/genba", qos=1)
        async with asyncio.timeout(10):
            async for message in sub.messages:
                d: dict[str, Any] = json.loads(message.payload)
                if until(d):
                    return d
    raise AssertionError("unreachable")


async def test_host_corrects_an_offline_state_on_its_own_id_whatever_its_group(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    await _host(make_config, run_node, host_config(mqtt_broker, group="some-other-group"))
    first = await _state(mqtt_broker, lambda d: d["online"] is True)
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as other:
        offline = {"online": False, "timestamp": first["timestamp"]}
        await other.publish("spBv1.0/STATE/genba", json.dumps(offline), qos=1, retain=True)
    await asyncio.sleep(0.3)
    # the retained STATE is online again, set by the host
    again = await _state(mqtt_broker, lambda d: True)
    assert again["online"] is True


def _up(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "genba", "up", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


async def _wait_online(broker: Broker) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            return await _state(broker, lambda d: d["online"] is True)
        except TimeoutError:
            continue
    raise AssertionError("the host never said online")


@pytest.mark.process
async def test_clean_stop_says_offline_and_the_will_carries_the_birth_timestamp(
    tmp_path: Path, mqtt_broker: Broker
) -> None:
    config = tmp_path / "genba.toml"
    config.write_text(
        f'[node]\ndata_dir = "{tmp_path / "data"}"\nhttp = "127.0.0.1:0"\n'
        + host_config(mqtt_broker)
    )
    proc = _up(config)
    try:
        birth = await _wait_online(mqtt_broker)
        proc.send_signal(signal.SIGTERM)  # a clean stop: online false before disconnecting
        assert proc.wait(20) == 0
        after = await _state(mqtt_broker, lambda d: True)  # the retained one
        assert after == {"online": False, "timestamp": birth["timestamp"]}
        proc = _up(config)
        birth = await _wait_online(mqtt_broker)
        proc.kill()  # no goodbye: the broker sends the will
        proc.wait()
        will = await _state(mqtt_broker, lambda d: d["online"] is False)
        assert will["timestamp"] == birth["timestamp"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

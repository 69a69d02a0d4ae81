"""The contract every registered connector kind fulfils, with the simulator's outputs as peers.

Each kind gets a real peer that genba's connector did not write for it: the simulated plant
served by a Mosquitto broker as MQTT JSON or Sparkplug B, by an asyncua OPC UA server, by a
pymodbus Modbus TCP server, or run in-process (``simulator``). Against each, a running node:

* declares the plant's tags and stores their samples;
* writes a setpoint through ``POST /api/tags/{path}/write`` and answers with the value read
  back from the device, which the history then holds too; the command and its result are in
  the record log;
* never reports as confirmed a write the device does not take (a measured value);
* turns input it cannot use into a dead letter (kinds that take messages);
* says ``not_connected`` while its peer is gone and collects again when it is back.

A new connector kind must bring a peer here (``PEERS``): the suite fails for a kind without.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from genba import plugins
from genba.config import GenbaConfig
from genba.sim import Simulator, load_scenario
from genba.sim.outputs import ModbusOutput, MqttOutput, OpcUaOutput, SparkplugOutput, register_map
from genba.testing import Mosquitto, free_port
from genba.types import NS_PER_S, Quality
from tests.conftest import RunningNode, wait_until

KINDS = sorted(plugins.available(plugins.CONNECTORS))
pytestmark = pytest.mark.timeout(120)


class Driver:
    """Runs the simulated plant in real time and hands each new tick to its outputs."""

    def __init__(self, make: Callable[[Simulator], Any] | None) -> None:
        now = time.time_ns()
        self.sim = Simulator(load_scenario("demo"), t0_ns=now - now % NS_PER_S)
        self.make = make
        self.output: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.make is not None:
            self.output = self.make(self.sim)
            await self.output.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            ts, values = self.sim.advance((time.time_ns() - self.sim.t0_ns) / NS_PER_S)
            if len(ts) and self.output is not None:
                with contextlib.suppress(Exception):  # a stopped output: the ticks are lost
                    await self.output.publish(ts, values)
            await asyncio.sleep(0.2)

    async def stop_output(self) -> None:
        output, self.output = self.output, None
        if output is not None:
            await output.stop()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.stop_output()


@dataclass
class Peer:
    kind: str
    connector: str
    """The [[connector]] table for the node."""
    take_away: Callable[[], Awaitable[None]] | None = None
    bring_back: Callable[[], Awaitable[None]] | None = None
    send_bad: Callable[[], Awaitable[None]] | None = None
    """Sends one message the connector cannot use."""


PeerMaker = Callable[[Path], contextlib.AbstractAsyncContextManager[Peer]]


@contextlib.asynccontextmanager
async def _simulator(tmp_path: Path) -> AsyncIterator[Peer]:
    yield Peer("simulator", 'kind = "simulator"\nscenario = "demo"\nsample_rate_hz = 5')


@contextlib.asynccontextmanager
async def _broker_peer(
    tmp_path: Path, kind: str, output: Callable[[Simulator, Mosquitto], Any], options: str
) -> AsyncIterator[Peer]:
    broker = Mosquitto(tmp_path)
    broker.start()
    driver = Driver(lambda sim: output(sim, broker))
    await driver.start()

    async def take_away() -> None:
        broker.stop()

    async def bring_back() -> None:
        broker.start()

    async def send_bad() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as c:
            topic = (
                "spBv1.0/berlin/DDATA/packaging-line1/filler"
                if kind == "sparkplug"
                else "berlin/packaging/line1/filler/bad"
            )
            await c.publish(topic, b"\xff not a payload {", qos=1)

    try:
        yield Peer(
            kind,
            f'kind = "{kind}"\nhost = "{broker.host}"\nport = {broker.port}\n{options}',
            take_away,
            bring_back,
            send_bad,
        )
    finally:
        await driver.close()
        broker.stop()


def _mqtt(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[Peer]:
    return _broker_peer(
        tmp_path,
        "mqtt",
        lambda sim, b: MqttOutput(sim, b.host, b.port, qos=1, reconnect_max_s=0.5),
        'topics = ["berlin/#"]\nreconnect_max_s = 0.5',
    )


def _sparkplug(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[Peer]:
    return _broker_peer(
        tmp_path,
        "sparkplug",
        lambda sim, b: SparkplugOutput(sim, b.host, b.port, reconnect_max_s=0.5),
        'edge_node_levels = "-"\nreconnect_max_s = 0.5',
    )


@contextlib.asynccontextmanager
async def _server_peer(kind: str, make: Callable[[Simulator, int], Any]) -> AsyncIterator[Peer]:
    port = free_port()
    driver = Driver(lambda sim: make(sim, port))
    await driver.start()
    if kind == "opcua":
        options = f'endpoint = "opc.tcp://127.0.0.1:{port}/genba/"\nsampling_ms = 100'
    else:
        registers = "".join(
            f'\n  [[connector.register]]\n  tag = "{r["tag"]}"\n  address = {r["address"]}\n'
            f'  type = "{r["type"]}"\n  writable = {str(r["writable"]).lower()}\n'
            for r in register_map(driver.sim)
        )
        options = f"port = {port}\npoll_ms = 200\ntimeout_s = 1.0\n{registers}"
    try:
        yield Peer(
            kind,
            f'kind = "{kind}"\nreconnect_max_s = 0.5\n{options}'
            if kind == "opcua"
            else f'kind = "{kind}"\n{options}',
            driver.stop_output,
            driver.start,
        )
    finally:
        await driver.close()


PEERS: dict[str, PeerMaker] = {
    "simulator": _simulator,
    "mqtt": _mqtt,
    "sparkplug": _sparkplug,
    "opcua": lambda tmp: _server_peer("opcua", OpcUaOutput),
    "modbus": lambda tmp: _server_peer("modbus", ModbusOutput),
}


@pytest.fixture(params=KINDS)
async def node(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> AsyncIterator[tuple[RunningNode, Peer]]:
    kind = str(request.param)
    assert kind in PEERS, f"connector kind {kind!r} has no peer in the contract suite"
    async with PEERS[kind](tmp_path) as peer:
        config = make_config(
            f"""
[store]
flush_interval_ms = 50

[[connector]]
name = "dut"
writable = ["#"]
write_timeout_s = 3
{peer.connector}
"""
        )
        rn = await run_node(config)
        await wait_until(lambda: _tag(rn, "filler/speed_sp") is not None, 30)
        await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 30)
        yield rn, peer
        await rn.shutdown()


def _tag(rn: RunningNode, suffix: str) -> str | None:
    return next((t.path for t in rn.node.registry if t.path.endswith(suffix)), None)


def _path(rn: RunningNode, suffix: str) -> str:
    path = _tag(rn, suffix)
    assert path is not None, f"no tag ending in {suffix}"
    return path


def _last(rn: RunningNode, path: str) -> float | None:
    """The newest stored value of ``path`` (None before the first)."""
    last = rn.node.store.last([rn.node.registry.get(path).id])
    return float(last.values[0]) if len(last) else None


def _newest_good_ns(rn: RunningNode, tag: int) -> int:
    last = rn.node.store.last([tag])
    return int(last.ts_ns[0]) if len(last) and last.quality[0] < Quality.BAD else 0


async def _write(rn: RunningNode, path: str, value: float) -> Any:
    return await rn.http.post(f"/api/tags/{path}/write", json={"value": value}, timeout=30)


async def test_declares_the_plant_and_stores_its_samples(node: tuple[RunningNode, Peer]) -> None:
    rn, _ = node
    vibration = _path(rn, "filler/vibration")
    await wait_until(lambda: rn.node.writer.stats.stored_samples > 20, 30)
    last = (await rn.http.get(f"/api/tags/{vibration}/last")).json()
    assert np.isfinite(last["value"])
    assert rn.node.owners[rn.node.registry.get(vibration).id] == "dut"


async def test_a_setpoint_write_is_read_back_and_kept(node: tuple[RunningNode, Peer]) -> None:
    rn, _ = node
    path = _path(rn, "filler/speed_sp")
    for value in (57.5, 61.25):  # two values: the second is not the one a first reply held
        r = await _write(rn, path, value)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["confirmed"] is True, answer
        assert answer["value"] == pytest.approx(value, rel=1e-6)
        assert (answer["path"], answer["connector"], answer["origin"]) == (path, "dut", "api")
    await wait_until(lambda: _last(rn, path) == pytest.approx(61.25, rel=1e-6), 10)
    await wait_until(lambda: rn.node.records.pending == 0)
    commands = rn.node.store.records("command", key=path)
    results = rn.node.store.records("command.result", key=path)
    assert [c.body["value"] for c in commands] == [57.5, 61.25]
    assert [r.body["id"] for r in results] == [c.body["id"] for c in commands]
    assert all(r.body["confirmed"] for r in results)


async def test_a_write_the_device_does_not_take_is_never_confirmed(
    node: tuple[RunningNode, Peer],
) -> None:
    rn, _ = node
    path = _path(rn, "filler/vibration")  # measured, not a setpoint: no device takes it
    r = await _write(rn, path, 1234.5)
    if r.status_code == 200:  # sent, but the device kept measuring: read back, not confirmed
        assert r.json()["confirmed"] is False
        assert r.json()["value"] != pytest.approx(1234.5)
    else:
        assert r.status_code == 409, r.text
        assert r.json()["error"]["type"] == "write_rejected"
        assert "dut" in r.json()["error"]["message"]
    await wait_until(lambda: rn.node.records.pending == 0)
    (result,) = rn.node.store.records("command.result", key=path)
    assert result.body.get("confirmed") is not True


@pytest.mark.parametrize("kind", ["mqtt", "sparkplug"])
async def test_input_it_cannot_use_is_a_dead_letter(
    kind: str,
    tmp_path: Path,
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    async with PEERS[kind](tmp_path) as peer:
        assert peer.send_bad is not None
        rn = await run_node(make_config(f'[[connector]]\nname = "dut"\n{peer.connector}'))
        await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 20)
        await peer.send_bad()
        await wait_until(lambda: rn.node.dead_letters.counts["dut"] >= 1, 10)
        body = (await rn.http.get("/api/deadletter", params={"source": "dut"})).json()
        assert body["records"][0]["source"] == "dut"
        assert rn.node.health()["connectors"][0]["connected"] is True  # it carries on


@pytest.mark.timeout(240)  # its waits add up to 140 s: under load the default 120 s cut it short
@pytest.mark.parametrize("kind", ["modbus", "mqtt", "opcua", "sparkplug"])
async def test_not_connected_while_the_peer_is_gone_and_collecting_when_back(
    kind: str,
    tmp_path: Path,
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    async with PEERS[kind](tmp_path) as peer:
        assert peer.take_away is not None
        assert peer.bring_back is not None
        text = f'[[connector]]\nname = "dut"\nwritable = ["#"]\n{peer.connector}'
        rn = await run_node(make_config(text))
        await wait_until(lambda: _tag(rn, "filler/speed_sp") is not None, 30)
        path = _path(rn, "filler/speed_sp")
        # Gone after it was there: a Modbus map declares its tags before the first poll, so
        # without this the device went away before the connector had started (state stopped).
        await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 30)
        await peer.take_away()
        await wait_until(lambda: not rn.node.health()["connectors"][0]["connected"], 20)
        assert rn.node.health()["connectors"][0]["state"] in ("waiting", "connecting")
        r = await _write(rn, path, 42.0)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "not_connected"
        await peer.bring_back()
        back = time.time_ns()
        await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 30)
        tag = rn.node.registry.get(path).id
        # The device's values flow again: a good sample taken after it came back is stored.
        await wait_until(lambda: _newest_good_ns(rn, tag) > back, 30)
        assert rn.node.health()["connectors"][0]["state"] == "connected"
        r = await _write(rn, path, 42.0)
        assert r.status_code == 200, r.text
        assert r.json()["confirmed"] is True

"""The broker goes away for 30 s while the simulator publishes, and comes back.

The simulator publishes every sample as JSON with QoS 1 (an edge gateway that keeps what the
broker has not acknowledged) and as Sparkplug B (one edge node per line, QoS 0 DDATA, rebirth
on reconnect). genba reads both. After the outage:

* every JSON sample the broker acknowledged is in genba's store, read back through the API
  exactly (genba's persistent MQTT session collects what the broker queued for it);
* the Sparkplug host, which comes back after the edge nodes have reborn (its own link is held
  down a little longer through a gate, as when a host's network returns late), sees DDATA with
  a sequence number it did not expect, asks for a rebirth and gets it, and its samples agree
  with the JSON ones again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from genba.config import GenbaConfig
from genba.connectors.sparkplug import SparkplugConnector
from genba.sim import Simulator, load_scenario
from genba.sim.outputs import MqttOutput, SparkplugOutput, run_outputs
from genba.testing import free_port
from tests.conftest import Broker, RunningNode, wait_until

OUTAGE_S = 30.0
pytestmark = pytest.mark.timeout(150)


class Gate:
    """A TCP relay in front of the broker that the test can hold shut.

    Shut, it does not listen: a client's connect is refused at once, as when a host's network
    is down, and it tries again after its backoff. (Accepting and closing instead made clients
    wait out their connect timeout, 10 s, and a test on a loaded machine ran out of time.)
    """

    def __init__(self, broker: Broker) -> None:
        self.broker, self.port, self.open = broker, free_port(), True
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.open = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection(self.broker.host, self.broker.port)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_w}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._links -= {writer, up_w}

    def shut(self) -> None:
        self.open = False
        if self._server:
            self._server.close()  # no longer listening: connects are refused
            self._server = None
        for w in self._links:
            w.close()

    async def stop(self) -> None:
        self.shut()


def config(broker: Broker, uns_gate: Gate, spb_gate: Gate) -> str:
    return f"""
[store]
flush_interval_ms = 50

[[connector]]
kind = "mqtt"
name = "uns"
port = {uns_gate.port}
topics = ["berlin/#"]
qos = 1
client_id = "genba-outage-test"
reconnect_max_s = 1.0

[[connector]]
kind = "sparkplug"
name = "spb"
port = {spb_gate.port}
tag_prefix = "spb/"
edge_node_levels = "-"
rebirth_interval_s = 1.0
reconnect_max_s = 1.0
"""


async def test_a_30_s_broker_outage_loses_nothing_the_broker_accepted(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    uns_gate, spb_gate = Gate(mqtt_broker), Gate(mqtt_broker)
    await uns_gate.start()
    await spb_gate.start()
    rn: RunningNode = await run_node(make_config(config(mqtt_broker, uns_gate, spb_gate)))
    host = next(c for c, _ in rn.node.connectors if isinstance(c, SparkplugConnector))
    sim = Simulator(load_scenario("demo"), t0_ns=time.time_ns() // 10**9 * 10**9 - 10**9)
    accepted: list[tuple[str, str]] = []
    json_out = MqttOutput(
        sim, mqtt_broker.host, mqtt_broker.port, qos=1, identifier="sim-gateway",
        reconnect_max_s=0.5, on_accepted=lambda t, p: accepted.append((t, p)),
    )  # fmt: skip
    edge = SparkplugOutput(sim, mqtt_broker.host, mqtt_broker.port, reconnect_max_s=0.5)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_outputs(sim, [json_out, edge], speed=1.0, stop=stop))
    try:
        n_edges = len(edge.nodes)
        await wait_until(
            lambda: sum(n.born for n in host.nodes.values()) == n_edges and len(accepted) > 500,
            20,
        )
        births = [n.births for n in edge.nodes]

        # The outage: the broker stops (and keeps its persistence file). genba's links stay
        # down a little longer than the broker: the JSON one until the gateway has sent its
        # backlog (the broker keeps it for genba's session), the Sparkplug one until the edge
        # nodes have come back and sent data the host has not seen born.
        uns_gate.shut()
        spb_gate.shut()
        mqtt_broker.stop()
        await asyncio.sleep(0.5)  # a PUBACK that arrived just before the stop is handled now
        accepted_before = len(accepted)
        await asyncio.sleep(OUTAGE_S)
        assert len(accepted) == accepted_before  # no broker, nothing acknowledged
        assert host.stale == {f"berlin/{n.edge}" for n in edge.nodes}
        mqtt_broker.start()
        await wait_until(lambda: all(n.connected.is_set() for n in edge.nodes), 20)
        assert all(n.births == b + 1 for n, b in zip(edge.nodes, births, strict=True))
        await asyncio.sleep(2.5)  # DDATA flows; the host misses the births
        rebirths_before = host.rebirths_requested
        await spb_gate.start()

        # The host sees the gap, asks, and the edge nodes rebirth.
        await wait_until(
            lambda: all(n.births >= b + 2 for n, b in zip(edge.nodes, births, strict=True)), 20
        )
        assert host.rebirths_requested >= rebirths_before + n_edges
        await wait_until(lambda: not host.stale, 10)
        recovered_ms = time.time_ns() // 10**6 - 1000  # samples are up to 1 s behind the wall
        host_health = host.ctx.health
        seen = host_health.samples
        await wait_until(lambda: host_health.samples >= seen + 2 * len(sim.tag_paths), 20)
        # The gateway has sent its backlog (30 s of samples, held for the broker) by now.
        assert len(accepted) > accepted_before + 30 * len(sim.tag_paths)
        await uns_gate.start()
        await asyncio.sleep(2.0)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 20)
    # genba's session hands over what the broker kept for it; then everything is stored.
    uns = next(ctx.health for c, ctx in rn.node.connectors if c is not host)
    try:
        await wait_until(lambda: uns.samples >= len(accepted), 30)
    finally:
        await uns_gate.stop()
        await spb_gate.stop()

    reasons = (await rn.http.get("/api/deadletter", params={"source": "spb"})).json()["records"]
    assert any("sequence gap" in r["reason"] for r in reasons), reasons

    # Every sample the broker acknowledged is stored, exactly; read back through the API.
    want: dict[str, set[tuple[int, float]]] = {}
    for topic, payload in accepted:
        body = json.loads(payload)
        want.setdefault(topic, set()).add((body["timestamp"], body["value"]))
    start_ms, end_ms = sim.t0_ns // 10**6, sim.t0_ns // 10**6 + round(sim.now_s * 1000) + 1
    await wait_until(lambda: rn.node.writer.stats.pending_samples == 0, 10)
    missing = 0
    spb_differ = spb_after = 0
    for topic, samples in want.items():
        params = {"start": start_ms, "end": end_ms}
        got = (await rn.http.get(f"/api/tags/{topic}/samples", params=params)).json()
        stored = set(zip(got["ts_ms"], got["value"], strict=True))
        missing += len(samples - stored)
        # The Sparkplug copy of the same tag carries the same samples, before and after.
        spb = (await rn.http.get(f"/api/tags/spb/{topic}/samples", params=params)).json()
        json_at = dict(samples)
        for ts, v in zip(spb["ts_ms"], spb["value"], strict=True):
            spb_differ += json_at.get(ts, v) != v
            spb_after += ts > recovered_ms
    assert len(accepted) > 40 * len(sim.tag_paths)
    assert missing == 0, f"{missing} acknowledged samples are not in the store"
    assert spb_differ == 0
    assert spb_after >= len(sim.tag_paths)  # Sparkplug data flows again after the rebirth

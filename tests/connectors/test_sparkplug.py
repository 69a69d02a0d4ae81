"""The Sparkplug B host against a real Mosquitto and an independent edge node (Eclipse Tahu's
schema from the sparkplug-b-packets package, published with aiomqtt; not genba's encoder)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import sparkplub_b_packets.core.sparkplug_b_pb2 as tahu

from genba.bus import Overflow
from genba.config import GenbaConfig
from genba.connectors.sparkplug import SparkplugConnector
from genba.historian import TimeRange
from genba.sim import Simulator, load_scenario
from genba.sim.outputs import SparkplugOutput
from genba.types import Event
from tests.conftest import Broker, RunningNode, wait_until

T_MS = (time.time_ns() // 10**9 - 600) * 1000


def config(broker: Broker) -> str:
    return f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "sparkplug"
name = "spb"
host = "{broker.host}"
port = {broker.port}
edge_node_levels = "-"
batch_ms = 20
rebirth_interval_s = 0.2
"""


class Edge:
    """A Sparkplug B edge node written for this test with Tahu's schema."""

    def __init__(self, client: aiomqtt.Client, group: str = "plant", node: str = "hall-l1") -> None:
        self.client, self.group, self.node = client, group, node
        self.seq = 0

    async def send(
        self,
        kind: str,
        metrics: list[dict[str, Any]],
        device: str | None = None,
        seq: int | None = None,
    ) -> None:
        p = tahu.Payload(timestamp=T_MS, seq=self.seq if seq is None else seq)
        self.seq = ((self.seq if seq is None else seq) + 1) % 256
        for m in metrics:
            p.metrics.add(**m)
        topic = f"spBv1.0/{self.group}/{kind}/{self.node}" + (f"/{device}" if device else "")
        await self.client.publish(topic, p.SerializeToString(), qos=1)

    async def birth(self) -> None:
        self.seq = 0
        await self.send("NBIRTH", [
            {"name": "bdSeq", "datatype": tahu.Int64, "long_value": 3},
            {"name": "Node Control/Rebirth", "datatype": tahu.Boolean, "boolean_value": False},
        ])  # fmt: skip
        await self.send("DBIRTH", [
            {"name": "force", "alias": 1, "datatype": tahu.Double, "double_value": 12.5, "timestamp": T_MS},
            {"name": "offset", "alias": 2, "datatype": tahu.Int32, "int_value": (1 << 32) - 5, "timestamp": T_MS},
            {"name": "count", "alias": 3, "datatype": tahu.Int64, "long_value": 2**40, "timestamp": T_MS},
            {"name": "ratio", "alias": 4, "datatype": tahu.Float, "float_value": 0.5, "timestamp": T_MS},
            {"name": "running", "alias": 5, "datatype": tahu.Boolean, "boolean_value": True, "timestamp": T_MS},
            {"name": "label", "alias": 6, "datatype": tahu.String, "string_value": "A-17", "timestamp": T_MS},
        ], device="press")  # fmt: skip


async def values(rn: RunningNode, tag: str) -> tuple[list[int], list[float]]:
    d = (
        await rn.http.get(
            f"/api/tags/{tag}/samples", params={"start": T_MS - 1000, "end": T_MS + 60_000}
        )
    ).json()
    return d["ts_ms"], d["value"]


async def _started(
    make_config: Callable[[str], GenbaConfig], run_node: Any, broker: Broker
) -> RunningNode:
    rn: RunningNode = await run_node(make_config(config(broker)))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    return rn


async def test_births_and_data_by_alias_are_stored_exactly(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn = await _started(make_config, run_node, mqtt_broker)
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        edge = Edge(client)
        await edge.birth()
        await edge.send("DDATA", [
            {"alias": 1, "double_value": 13.25, "timestamp": T_MS + 1000},
            {"alias": 2, "int_value": 7, "timestamp": T_MS + 1000},
            {"alias": 6, "string_value": "A-18", "timestamp": T_MS + 1000},  # known, not a sample
        ], device="press")  # fmt: skip
        # Only born numeric aliases: decoded as columns (one kind per metric, then one kind).
        await edge.send("DDATA", [
            {"alias": 1, "is_null": True, "timestamp": T_MS + 2000},  # a null: no sample
            {"alias": 2, "int_value": (1 << 32) - 9, "timestamp": T_MS + 2000},
            {"alias": 3, "long_value": (1 << 64) - 3, "timestamp": T_MS + 2000},
            {"alias": 4, "float_value": 0.25, "timestamp": T_MS + 2000},
            {"alias": 5, "boolean_value": False},  # no timestamp: the payload's
        ], device="press")  # fmt: skip
        await edge.send("DDATA", [
            {"alias": 1, "double_value": 14.0, "timestamp": T_MS + 3000},
            {"alias": 1, "double_value": 14.5, "timestamp": T_MS + 4000},
        ], device="press")  # fmt: skip
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 13)
    base = "plant/hall/l1/press"
    assert await values(rn, f"{base}/force") == (
        [T_MS, T_MS + 1000, T_MS + 3000, T_MS + 4000], [12.5, 13.25, 14.0, 14.5]
    )  # fmt: skip
    assert await values(rn, f"{base}/offset") == (
        [T_MS, T_MS + 1000, T_MS + 2000], [-5.0, 7.0, -9.0]
    )  # signed in 32 bits  # fmt: skip
    assert await values(rn, f"{base}/count") == ([T_MS, T_MS + 2000], [float(2**40), -3.0])
    assert await values(rn, f"{base}/ratio") == ([T_MS, T_MS + 2000], [0.5, 0.25])
    assert await values(rn, f"{base}/running") == ([T_MS, T_MS], [1.0, 0.0])
    assert "plant/hall/l1/press/label" not in rn.node.registry  # strings are not samples
    assert rn.node.health()["connectors"][0]["dead_letters"] == 0


async def _commands(broker: Broker, got: list[tuple[str, Any]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as sub:
        await sub.subscribe("spBv1.0/+/NCMD/#")
        await sub.subscribe("spBv1.0/+/DCMD/#")
        ready.set()
        async for message in sub.messages:
            p = tahu.Payload()
            p.ParseFromString(message.payload)
            got.append((str(message.topic), p))


async def test_gaps_and_data_before_birth_ask_for_rebirth(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn = await _started(make_config, run_node, mqtt_broker)
    got: list[tuple[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_commands(mqtt_broker, got, ready))
    await ready.wait()
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        edge = Edge(client, node="hall-l2")
        await edge.send(
            "DDATA", [{"alias": 1, "double_value": 1.0}], device="press"
        )  # no birth yet
        await wait_until(lambda: len(got) == 1)
        topic, cmd = got[0]
        assert topic == "spBv1.0/plant/NCMD/hall-l2"
        assert (cmd.metrics[0].name, cmd.metrics[0].boolean_value) == ("Node Control/Rebirth", True)
        await edge.birth()
        await asyncio.sleep(0.3)  # past rebirth_interval_s
        await edge.send("DDATA", [{"alias": 1, "double_value": 2.0}], device="press", seq=9)  # gap
        await wait_until(lambda: len(got) == 2)
    listener.cancel()
    records = (await rn.http.get("/api/deadletter")).json()["records"]
    reasons = [r["reason"] for r in records]
    assert any("before NBIRTH" in r for r in reasons)
    assert any("sequence gap: expected seq 2, got 9" in r for r in reasons)
    details = rn.node.health()["connectors"][0]["details"]
    assert details["rebirths_requested"] == 2


async def test_death_marks_stale_and_state_and_dcmd(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn = await _started(make_config, run_node, mqtt_broker)
    events = rn.node.bus.subscribe("plant/#", name="test-events", overflow=Overflow.DROP_OLDEST)
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        await client.subscribe("spBv1.0/STATE/genba")
        async with asyncio.timeout(5):
            state = await anext(aiter(client.messages))
        assert state.retain is True
        assert b'"online": true' in bytes(state.payload)

        got: list[tuple[str, Any]] = []
        ready = asyncio.Event()
        listener = asyncio.create_task(_commands(mqtt_broker, got, ready))
        await ready.wait()
        edge = Edge(client)
        await edge.birth()
        await wait_until(lambda: "plant/hall/l1/press/force" in rn.node.registry)
        await wait_until(
            lambda: (
                rn.node.health()["connectors"][0]["details"].get("edge_nodes_online")
                == ["plant/hall-l1"]
            )
        )
        conn = rn.node.connectors[0][0]
        assert isinstance(conn, SparkplugConnector)
        await conn.write("plant/hall/l1/press/force", 20.0)
        await wait_until(lambda: len(got) == 1)
        topic, cmd = got[0]
        assert topic == "spBv1.0/plant/DCMD/hall-l1/press"
        m = cmd.metrics[0]  # by alias, as the birth declared one (Sparkplug 3.0)
        assert (m.name, m.alias, m.datatype, m.double_value) == ("", 1, tahu.Double, 20.0)
        listener.cancel()
        await edge.send("NDEATH", [{"name": "bdSeq", "datatype": tahu.Int64, "long_value": 3}])
    await wait_until(
        lambda: rn.node.health()["connectors"][0]["details"].get("stale") == ["plant/hall-l1"]
    )
    items = await events.drain(timeout=2)
    assert any(
        isinstance(e, Event) and e.kind == "stale" and e.topic == "plant/hall-l1" for e in items
    )


async def test_genba_simulator_edge_node_to_genba_host(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn = await _started(make_config, run_node, mqtt_broker)
    sim = Simulator(load_scenario("demo"), t0_ns=T_MS * 10**6)
    out = SparkplugOutput(sim, mqtt_broker.host, mqtt_broker.port)
    await out.start()
    ts, vals = sim.advance(3.0)
    await out.publish(ts, vals)
    await out.stop()
    col = sim.tag_paths.index("berlin/packaging/line1/filler/vibration")
    await wait_until(lambda: "berlin/packaging/line1/filler/vibration" in rn.node.registry)
    await wait_until(lambda: rn.node.writer.stats.stored_samples >= 3 * 42)
    d = (await rn.http.get("/api/tags/berlin/packaging/line1/filler/vibration/samples",
                           params={"start": T_MS, "end": T_MS + 3000})).json()  # fmt: skip
    assert d["value"] == vals[:, col].tolist()


def test_fuzz_random_bytes_and_random_metrics_never_escape(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    """Random bytes and random (well-formed) payloads, born or not: refusals, no exceptions."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from genba.node import Node

    node = Node(make_config(FUZZ_CONFIG))
    host = next(c for c, _ in node.connectors if isinstance(c, SparkplugConnector))
    born = tahu.Payload(timestamp=T_MS, seq=0)
    born.metrics.add(name="bdSeq", datatype=tahu.Int64, long_value=0)
    dbirth = tahu.Payload(timestamp=T_MS, seq=1)
    for alias, dtype in enumerate((tahu.Double, tahu.Int32, tahu.Int64, tahu.Boolean, tahu.String)):
        dbirth.metrics.add(name=f"m{alias}", alias=alias, datatype=dtype)
    topics = st.sampled_from([
        "spBv1.0/g/NBIRTH/e", "spBv1.0/g/DBIRTH/e/d", "spBv1.0/g/DDATA/e/d", "spBv1.0/g/NDATA/e",
        "spBv1.0/g/DDEATH/e/d", "spBv1.0/g/NDEATH/e", "spBv1.0/g/NCMD/e", "spBv1.0/bad", "x/y",
    ])  # fmt: skip
    value = st.one_of(
        st.builds(dict, int_value=st.integers(0, 2**32 - 1)),
        st.builds(dict, long_value=st.integers(0, 2**64 - 1)),
        st.builds(dict, double_value=st.floats()),
        st.builds(dict, float_value=st.floats(width=32)),
        st.builds(dict, boolean_value=st.booleans()),
        st.builds(dict, string_value=st.text(max_size=5)),
        st.builds(dict, is_null=st.just(True)),
    )
    metric = st.builds(
        lambda alias, name, ts, v: {**({"alias": alias} if alias is not None else {}),
                                    **({"name": name} if name else {}),
                                    **({"timestamp": ts} if ts is not None else {}), **v},
        st.one_of(st.none(), st.integers(0, 7)), st.sampled_from(["", "m0", "m9", "bdSeq"]),
        st.one_of(st.none(), st.integers(0, T_MS + 10**6), st.integers(0, 2**64 - 1)), value,
    )  # fmt: skip

    def rebirth() -> None:
        host.handle("spBv1.0/g/NBIRTH/e", born.SerializeToString())
        host.handle("spBv1.0/g/DBIRTH/e/d", dbirth.SerializeToString())

    @settings(max_examples=300, deadline=None)
    @given(topics, st.binary(max_size=200))
    def random_bytes(topic: str, payload: bytes) -> None:
        host.handle(topic, payload)

    @settings(max_examples=300, deadline=None)
    @given(topics, st.integers(0, 2**64 - 1), st.lists(metric, max_size=6), st.booleans())
    def random_metrics(topic: str, seq: int, metrics: list[dict[str, Any]], fresh: bool) -> None:
        if fresh:
            rebirth()
        p = tahu.Payload(timestamp=T_MS, seq=seq)
        for m in metrics:
            p.metrics.add(**m)
        host.handle(topic, p.SerializeToString())
        batch = host._pending.take()  # what was taken converts to columns
        assert batch is None or np.isfinite(batch.values).all()

    try:
        random_bytes()
        random_metrics()
        rebirth()
        ok = tahu.Payload(timestamp=T_MS, seq=2)
        ok.metrics.add(alias=0, double_value=1.5)
        host.handle("spBv1.0/g/DDATA/e/d", ok.SerializeToString())
        batch = host._pending.take()
        assert batch is not None  # still decoding after all that
        assert batch.values[-1] == 1.5
        assert node.dead_letters.counts["spb"] > 0
    finally:
        node.store.close()


FUZZ_CONFIG = """
[[connector]]
kind = "sparkplug"
name = "spb"
"""


def test_nan_inf_and_future_timestamps_are_dead_letters_the_rest_is_kept(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    from genba.node import Node

    node = Node(make_config(FUZZ_CONFIG))
    try:
        host = next(c for c, _ in node.connectors if isinstance(c, SparkplugConnector))
        now_ms = time.time_ns() // 10**6
        births = [tahu.Payload(timestamp=now_ms, seq=0), tahu.Payload(timestamp=now_ms, seq=1)]
        births[0].metrics.add(name="bdSeq", datatype=tahu.Int64, long_value=0)
        births[1].metrics.add(name="t", alias=1, datatype=tahu.Double, double_value=1.0)
        host.handle("spBv1.0/g/NBIRTH/e", births[0].SerializeToString())
        host.handle("spBv1.0/g/DBIRTH/e/d", births[1].SerializeToString())
        assert host._pending.take() is not None
        data = tahu.Payload(timestamp=now_ms, seq=2)
        data.metrics.add(alias=1, double_value=float("nan"), timestamp=now_ms)
        data.metrics.add(alias=1, double_value=float("inf"), timestamp=now_ms + 1)
        data.metrics.add(alias=1, double_value=2.0, timestamp=now_ms + 3_600_000)  # an hour ahead
        data.metrics.add(alias=1, double_value=3.0, timestamp=now_ms + 2)
        host.handle("spBv1.0/g/DDATA/e/d", data.SerializeToString())
        batch = host._pending.take()
        assert batch is not None
        assert batch.values.tolist() == [3.0]
        assert batch.ts_ns.tolist() == [(now_ms + 2) * 10**6]
        (record,) = node.dead_letters.recent("spb")
        assert record["reason"].startswith("3 metric(s) refused, the rest stored: g/e/d/t: nan")
        ahead = tahu.Payload(timestamp=now_ms + 3_600_000, seq=3)
        ahead.metrics.add(alias=1, double_value=4.0)
        host.handle("spBv1.0/g/DDATA/e/d", ahead.SerializeToString())
        assert host._pending.take() is None
        assert (
            "more than max_future_s = 300 s ahead" in node.dead_letters.recent("spb")[0]["reason"]
        )
    finally:
        node.store.close()


async def test_a_hostile_birth_is_a_dead_letter_and_the_other_edge_nodes_carry_on(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    # issue 14: a metric name that is not UTF-8 or holds a control character once crashed the
    # whole connector (restarts with backoff: 55 % of a healthy edge node's samples lost)
    rn = await _started(make_config, run_node, mqtt_broker)
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        good = Edge(client, node="hall-l1")
        await good.birth()
        for i in range(8):
            p = tahu.Payload(timestamp=T_MS, seq=0)
            p.metrics.add(name="bdSeq", datatype=tahu.Int64, long_value=1)
            p.metrics.add(name="AAAA", alias=1, datatype=tahu.Double, double_value=1.0)
            p.metrics.add(name=f"ctl\x01{i}", alias=2, datatype=tahu.Double, double_value=1.0)
            p.metrics.add(name="ok", alias=3, datatype=tahu.Double, double_value=3.0)
            raw = p.SerializeToString().replace(b"AAAA", b"\xff\xfe\xfd\xfc")  # not UTF-8
            await client.publish("spBv1.0/plant/NBIRTH/hall-l9", raw, qos=1)
            await good.send("DDATA", [{"alias": 1, "double_value": 20.0 + i, "timestamp": T_MS + 1000 * (i + 1)}], device="press")  # fmt: skip
    await wait_until(
        lambda: (
            len(
                rn.node.store.raw(
                    [rn.node.registry.get("plant/hall/l1/press/force").id], TimeRange(0, 2**62)
                )
            )
            == 9
        )
    )
    health = rn.node.health()["connectors"][0]
    assert health["errors"] == 0  # never restarted
    assert health["dead_letters"] == 8
    reasons = [r["reason"] for r in (await rn.http.get("/api/deadletter")).json()["records"]]
    assert all("is not printable UTF-8 text" in r for r in reasons), reasons
    assert "plant/hall/l9/ok" in rn.node.registry  # the rest of that birth is kept


def test_a_flood_of_made_up_edge_nodes_stops_at_max_tags() -> None:
    from genba.bus import Bus
    from genba.clock import RealClock
    from genba.config import GenbaConfig
    from genba.connectors import ConnectorContext, ConnectorHealth
    from genba.connectors.sparkplug import SparkplugConnector, SparkplugSettings
    from genba.deadletter import DeadLetters
    from genba.sparkplug import encode
    from genba.tags import TagRegistry

    dead = DeadLetters(None)
    ctx = ConnectorContext(
        "spb", GenbaConfig.model_validate({}), Bus(TagRegistry()), RealClock(),
        ConnectorHealth("spb", "sparkplug"), dead_letters=dead, max_tags=3,
    )  # fmt: skip
    conn = SparkplugConnector(SparkplugSettings(), ctx)
    death = encode(timestamp=0, metrics=[{"name": "bdSeq", "datatype": 4, "long_value": 0}])
    for i in range(10):
        conn.handle(f"spBv1.0/g/NDEATH/edge{i}", death)
    assert len(conn.nodes) == 3
    assert dead.counts["spb"] == 7
    assert "max_tags = 3 edge nodes" in dead.recent(limit=1)[0]["reason"]


async def test_the_host_connects_over_tls_and_publishes_its_state(
    make_config: Callable[[str], GenbaConfig], run_node: Any, tmp_path: Path
) -> None:
    """TLS comes with the broker settings the mqtt connector shares (it was mqtt's alone)."""
    import json
    import shutil

    from genba.testing import Mosquitto
    from tests.connectors.test_mqtt import _tls_files

    ca, cert, key = _tls_files(tmp_path)
    broker = Mosquitto(tmp_path, options=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}")
    broker.start()
    try:
        rn: RunningNode = await run_node(
            make_config(
                f'[[connector]]\nkind = "sparkplug"\nport = {broker.port}\n'
                f'tls = true\nca_file = "{ca}"\n'
            )
        )
        await wait_until(lambda: rn.node.connectors[0][1].health.connected, 15)
        sub = await asyncio.create_subprocess_exec(
            shutil.which("mosquitto_sub") or "mosquitto_sub", "-h", "127.0.0.1",
            "-p", str(broker.port), "--cafile", str(ca), "-t", "spBv1.0/STATE/genba", "-C", "1",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(sub.communicate(), 15)
        assert json.loads(out)["online"] is True  # retained, over the TLS listener
    finally:
        broker.stop()

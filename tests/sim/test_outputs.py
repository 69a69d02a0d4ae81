"""Each network output of the simulator, read by a client genba did not write."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
from typing import Any

import aiomqtt
import numpy as np
import pytest
import sparkplub_b_packets.core.sparkplug_b_pb2 as tahu  # Eclipse Tahu's schema, not ours
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from genba.sim import SIGNALS, Simulator, load_scenario
from genba.sim.outputs import ModbusOutput, MqttOutput, OpcUaOutput, SparkplugOutput, register_map
from genba.testing import free_port
from tests.conftest import Broker, wait_until

FILLER = "berlin/packaging/line1/filler"
N_SIG = len(SIGNALS)
COL = {name: i for i, (name, _, _) in enumerate(SIGNALS)}


@pytest.fixture
def sim() -> Simulator:
    s = Simulator(load_scenario("demo"), t0_ns=1_767_225_600 * 10**9)
    s.advance(300.0)  # past the start
    return s


async def test_mqtt_json_is_read_by_mosquitto_sub(sim: Simulator, mqtt_broker: Broker) -> None:
    out = MqttOutput(sim, mqtt_broker.host, mqtt_broker.port)
    await out.start()
    sub = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_sub") or "mosquitto_sub",
        "-h", mqtt_broker.host, "-p", str(mqtt_broker.port), "-t", f"{FILLER}/#", "-v", "-C", str(N_SIG),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(0.5)  # let it subscribe
    ts, values = sim.advance(301.0)
    await out.publish(ts, values)
    stdout, _ = await asyncio.wait_for(sub.communicate(), 10)
    got = dict(line.split(" ", 1) for line in stdout.decode().splitlines())
    for name, col in COL.items():
        body = json.loads(got[f"{FILLER}/{name}"])
        assert body == {"value": values[0, col], "timestamp": int(ts[0]) // 1_000_000}
    pub = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_pub") or "mosquitto_pub",
        "-h", mqtt_broker.host, "-p", str(mqtt_broker.port), "-t", f"{FILLER}/speed_sp/set", "-m", "71.5",
    )  # fmt: skip
    await pub.wait()
    await wait_until(lambda: sim.plant.machines[0].speed_sp == 71.5)
    await out.stop()


async def _next(sub: aiomqtt.Client) -> tuple[str, tahu.Payload]:
    """The next message from the edge node (our own commands, echoed back, are skipped)."""
    async with asyncio.timeout(5):
        message = await anext(aiter(sub.messages))
        while "/NCMD/" in str(message.topic) or "/DCMD/" in str(message.topic):
            message = await anext(aiter(sub.messages))
    p = tahu.Payload()
    p.ParseFromString(message.payload)
    return str(message.topic), p


async def test_sparkplug_is_read_by_the_tahu_schema(sim: Simulator, mqtt_broker: Broker) -> None:
    out = SparkplugOutput(sim, mqtt_broker.host, mqtt_broker.port)
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as sub:
        await sub.subscribe("spBv1.0/#")
        await out.start()
        topic, nbirth = await _next(sub)
        assert topic == "spBv1.0/berlin/NBIRTH/packaging-line1"
        assert nbirth.seq == 0
        names = {m.name: m for m in nbirth.metrics}
        assert names["bdSeq"].datatype == tahu.Int64
        assert names["Node Control/Rebirth"].boolean_value is False
        aliases: dict[int, str] = {}
        for i, machine in enumerate(("filler", "capper", "labeler")):
            topic, dbirth = await _next(sub)
            assert topic == f"spBv1.0/berlin/DBIRTH/packaging-line1/{machine}"
            assert dbirth.seq == i + 1
            assert [m.name for m in dbirth.metrics] == [s for s, _, _ in SIGNALS]
            for m in dbirth.metrics:
                aliases[m.alias] = f"berlin/packaging/line1/{machine}/{m.name}"
            types = {m.name: m.datatype for m in dbirth.metrics}
            assert (types["state"], types["good_count"], types["vibration"]) == (
                tahu.Int32,
                tahu.Int64,
                tahu.Double,
            )
        assert len(aliases) == 3 * N_SIG  # unique per edge node

        ts, values = sim.advance(301.0)
        await out.publish(ts, values)
        for i in range(3):
            topic, ddata = await _next(sub)
            assert ddata.seq == 4 + i
            for m in ddata.metrics:
                col = sim.tag_paths.index(aliases[m.alias])
                assert not m.HasField("name")  # data by alias only
                assert getattr(m, m.WhichOneof("value")) == values[0, col]
                assert m.timestamp == int(ts[0]) // 1_000_000

        # A host asks for a rebirth, then writes a setpoint by name.
        ncmd = tahu.Payload(timestamp=1)
        ncmd.metrics.add(name="Node Control/Rebirth", datatype=tahu.Boolean, boolean_value=True)
        await sub.publish("spBv1.0/berlin/NCMD/packaging-line1", ncmd.SerializeToString())
        topic, reborn = await _next(sub)
        assert topic == "spBv1.0/berlin/NBIRTH/packaging-line1"
        assert reborn.seq == 0
        for _ in range(3):
            await _next(sub)  # the DBIRTHs again
        dcmd = tahu.Payload(timestamp=2)
        dcmd.metrics.add(name="temperature_sp", datatype=tahu.Double, double_value=47.25)
        await sub.publish("spBv1.0/berlin/DCMD/packaging-line1/capper", dcmd.SerializeToString())
        await wait_until(lambda: sim.plant.machines[1].temperature_sp == 47.25)

        await out.stop()
        topic, death = await _next(sub)
        assert topic == "spBv1.0/berlin/NDEATH/packaging-line1"
        assert death.metrics[0].name == "bdSeq"
        assert death.metrics[0].long_value == names["bdSeq"].long_value


async def test_opcua_is_read_by_the_asyncua_client(sim: Simulator) -> None:
    port = free_port()
    out = OpcUaOutput(sim, port)
    await out.start()
    try:
        ts, values = sim.advance(301.0)
        await out.publish(ts, values)
        async with Client(f"opc.tcp://127.0.0.1:{port}/genba/") as client:
            ns = await client.get_namespace_index("urn:genba:sim")
            node = client.nodes.objects
            for level in ("berlin", "packaging", "line1", "filler"):  # browse, as a SCADA would
                node = await node.get_child(f"{ns}:{level}")
            for name, col in COL.items():
                var = await node.get_child(f"{ns}:{name}")
                assert await var.read_value() == pytest.approx(values[0, col], rel=0, abs=0)
            units = await (await node.get_child(f"{ns}:vibration")).get_child(
                f"{ns}:EngineeringUnits"
            )
            assert (await units.read_value()).DisplayName.Text == "mm/s"
            speed_sp = await node.get_child(f"{ns}:speed_sp")
            await speed_sp.write_value(ua.Variant(64.0, ua.VariantType.Double))
            ts, values = sim.advance(302.0)
            await out.publish(ts, values)
            assert sim.plant.machines[0].speed_sp == 64.0
            with pytest.raises(ua.UaStatusCodeError):  # only setpoints are writable
                await (await node.get_child(f"{ns}:vibration")).write_value(
                    ua.Variant(0.0, ua.VariantType.Double)
                )
    finally:
        await out.stop()


async def test_modbus_is_read_by_the_pymodbus_client(sim: Simulator) -> None:
    port = free_port()
    out = ModbusOutput(sim, port)
    await out.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    try:
        ts, values = sim.advance(301.0)
        await out.publish(ts, values)
        await client.connect()
        regs: dict[str, dict[str, Any]] = {str(r["tag"]): r for r in register_map(sim)}
        for name, col in COL.items():
            r = regs[f"{FILLER}/{name}"]
            reply = await client.read_holding_registers(int(r["address"]), count=2, device_id=1)
            raw = struct.pack(">HH", *reply.registers)
            got = struct.unpack(">I" if r["type"] == "uint32" else ">f", raw)[0]
            expected = values[0, col]
            assert got == (int(expected) if r["type"] == "uint32" else np.float32(expected))
        sp = regs["berlin/packaging/line1/labeler/temperature_sp"]
        assert sp["writable"] is True
        await client.write_registers(
            int(sp["address"]), list(struct.unpack(">HH", struct.pack(">f", 55.5))), device_id=1
        )
        assert sim.plant.machines[2].temperature_sp == 55.5
    finally:
        client.close()
        await out.stop()

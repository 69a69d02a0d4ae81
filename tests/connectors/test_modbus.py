"""The Modbus TCP connector against a pymodbus server started by the test."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from genba.config import GenbaConfig
from genba.connectors.modbus import ModbusConnector
from genba.errors import WriteRejectedError
from genba.testing import free_port
from tests.conftest import RunningNode, wait_until


def words(fmt: str, value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(fmt, value)))


HOLDING = [0xFFFB, *words(">f", 21.5), *reversed(words(">I", 70_000)), *[0] * 15, 100]
# 0: int16 -5 | 1-2: float32 21.5 ABCD | 3-4: uint32 70,000 CDAB | ... | 20: setpoint raw 100


@pytest.fixture
async def device() -> AsyncIterator[tuple[int, SimDevice]]:
    port = free_port()
    dev = SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[True, False, True], datatype=DataType.BITS)],  # coils
            [SimData(0, values=[False], datatype=DataType.BITS)],  # discrete inputs
            [SimData(0, values=HOLDING, datatype=DataType.REGISTERS)],  # holding
            [SimData(10, values=[1234], datatype=DataType.REGISTERS)],  # input
        ),
    )
    server = ModbusTcpServer(dev, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    yield port, dev
    await server.shutdown()


def config(port: int, extra: str = "") -> str:
    return f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "modbus"
name = "press-plc"
port = {port}
poll_ms = 100
timeout_s = 1.0
{extra}
  [[connector.register]]
  tag = "s/a/l/press/offset"
  address = 0
  type = "int16"
  [[connector.register]]
  tag = "s/a/l/press/temperature"
  address = 1
  type = "float32"
  unit = "degC"
  [[connector.register]]
  tag = "s/a/l/press/count"
  address = 3
  type = "uint32"
  word_order = "little"
  [[connector.register]]
  tag = "s/a/l/press/pressure"
  table = "input"
  address = 10
  scale = 0.1
  unit = "bar"
  [[connector.register]]
  tag = "s/a/l/press/clamp"
  table = "coil"
  address = 2
  [[connector.register]]
  tag = "s/a/l/press/speed_sp"
  address = 20
  scale = 0.5
  writable = true
"""


async def last(rn: RunningNode, tag: str) -> Any:
    return (await rn.http.get(f"/api/tags/{tag}/last")).json()["value"]


async def test_register_map_types_scale_and_writes(
    make_config: Callable[[str], GenbaConfig], run_node: Any, device: tuple[int, SimDevice]
) -> None:
    port, _ = device
    rn: RunningNode = await run_node(make_config(config(port)))
    await wait_until(lambda: rn.node.writer.stats.stored_samples >= 6)
    assert await last(rn, "s/a/l/press/offset") == -5.0
    assert await last(rn, "s/a/l/press/temperature") == 21.5
    assert await last(rn, "s/a/l/press/count") == 70_000.0
    assert await last(rn, "s/a/l/press/pressure") == pytest.approx(123.4)
    assert await last(rn, "s/a/l/press/clamp") == 1.0
    assert await last(rn, "s/a/l/press/speed_sp") == 50.0  # raw 100 × 0.5
    units = {t["path"]: t["unit"] for t in (await rn.http.get("/api/tags")).json()}
    assert units["s/a/l/press/pressure"] == "bar"

    conn = rn.node.connectors[0][0]
    assert isinstance(conn, ModbusConnector)
    assert [(r.table, r.start, r.count) for r in conn.runs] == [
        ("holding", 0, 5), ("holding", 20, 1), ("input", 10, 1), ("coil", 2, 1),
    ]  # fmt: skip
    await conn.write("s/a/l/press/speed_sp", 61.0)  # raw 122
    await wait_until(lambda: rn.node.registry.get("s/a/l/press/speed_sp") is not None)
    await asyncio.sleep(0.3)
    assert await last(rn, "s/a/l/press/speed_sp") == 61.0
    with pytest.raises(WriteRejectedError, match="not a register with writable = true") as e:
        await conn.write("s/a/l/press/temperature", 1.0)
    assert (e.value.connector, e.value.tag, e.value.value) == (
        "press-plc",
        "s/a/l/press/temperature",
        1.0,
    )


async def test_a_dead_device_is_counted_and_retried(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    rn: RunningNode = await run_node(make_config(config(free_port())))  # nobody listens
    await wait_until(lambda: rn.node.health()["connectors"][0]["errors"] >= 3)
    health = rn.node.health()["connectors"][0]
    assert health["connected"] is False
    assert "cannot connect" in health["last_error"]
    node = (await rn.http.get("/api/health")).json()  # up, but not collecting: said so
    assert node["status"] == "degraded"
    assert [p for p in node["problems"] if p.startswith(f"connector {health['name']!r}")]


async def test_errors_name_the_fix_and_the_docs_quote_them_as_printed(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    from pathlib import Path

    from genba.sim import Simulator, load_scenario
    from genba.sim.outputs import ModbusOutput

    docs = (Path(__file__).parents[2] / "docs" / "connectors.md").read_text()
    port = free_port()
    out = ModbusOutput(Simulator(load_scenario("demo")), port)
    await out.start()
    try:
        cases = [  # (port, unit, address) → the start of last_error, as docs/connectors.md quotes it
            (free_port(), 1, 0, "ConnectionError: cannot connect to"),
            (port, 1, 60000, "ModbusException: Modbus Error: holding 60000+1 of unit 1: the device answered exception 2 (illegal data address)"),
            (port, 77, 0, "ModbusException: Modbus Error: holding 0+1 of unit 77: the device answered exception 4 (server device failure)"),
        ]  # fmt: skip
        for p, unit, address, said in cases:
            rn: RunningNode = await run_node(make_config(f"""
[[connector]]
kind = "modbus"
port = {p}
unit = {unit}
poll_ms = 100
timeout_s = 0.5
  [[connector.register]]
  tag = "a/b/c/d/x"
  address = {address}
"""))  # fmt: skip
            await wait_until(lambda: bool(rn.node.health()["connectors"][0]["last_error"]))  # noqa: B023
            error = rn.node.health()["connectors"][0]["last_error"]
            assert error.startswith(said), error
            assert said in docs, said
            if p != port:
                assert "check host, port" in error
                assert f"cannot connect to 127.0.0.1:{p}" in error
            await rn.shutdown()
    finally:
        await out.stop()

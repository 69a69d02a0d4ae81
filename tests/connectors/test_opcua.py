"""The OPC UA connector against an asyncua server started by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import Server, ua

from genba.config import GenbaConfig
from genba.connectors.opcua import OpcUaConnector
from tests.conftest import RunningNode, free_port, wait_until

# Newer than the initial values the server stamps at start, so they become the last values.
STAMP = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
STAMP_MS = int(STAMP.timestamp() * 1000)


class Plc:
    def __init__(self, port: int) -> None:
        self.port = port
        self.server = Server()
        self.vars: dict[str, Any] = {}

    async def start(self) -> None:
        await self.server.init()
        self.server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/plc/")
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await self.server.register_namespace("urn:test:plc")
        site = await self.server.nodes.objects.add_folder(ns, "plant")
        press = await (await site.add_folder(ns, "hall")).add_object(ns, "press")
        self.vars["force"] = await press.add_variable(
            ns, "force", ua.Variant(0.0, ua.VariantType.Double)
        )
        self.vars["strokes"] = await press.add_variable(
            ns, "strokes", ua.Variant(0, ua.VariantType.UInt32)
        )
        self.vars["running"] = await press.add_variable(
            ns, "running", ua.Variant(False, ua.VariantType.Boolean)
        )
        self.vars["label"] = await press.add_variable(
            ns, "label", ua.Variant("A-17", ua.VariantType.String)
        )
        self.vars["speed_sp"] = await press.add_variable(
            ns, "speed_sp", ua.Variant(50.0, ua.VariantType.Double)
        )
        await self.vars["speed_sp"].set_writable()
        await self.server.start()

    async def set(
        self, name: str, value: Any, vtype: ua.VariantType, stamp: datetime = STAMP
    ) -> None:
        await self.server.write_attribute_value(
            self.vars[name].nodeid, ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=stamp)
        )


@pytest.fixture
async def plc() -> AsyncIterator[Plc]:
    p = Plc(free_port())
    await p.start()
    yield p
    await p.server.stop()


def config(port: int) -> str:
    return f"""
[store]
flush_interval_ms = 20

[[connector]]
kind = "opcua"
name = "press-ua"
endpoint = "opc.tcp://127.0.0.1:{port}/plc/"
sampling_ms = 50
batch_ms = 20
reconnect_max_s = 1.0
"""


async def samples(rn: RunningNode, tag: str) -> tuple[list[int], list[float]]:
    d = (
        await rn.http.get(
            f"/api/tags/{tag}/samples", params={"start": STAMP_MS - 1000, "end": STAMP_MS + 1000}
        )
    ).json()
    return d["ts_ms"], d["value"]


async def test_browse_subscribe_store_write_and_resubscribe(
    make_config: Callable[[str], GenbaConfig], run_node: Any, plc: Plc
) -> None:
    rn: RunningNode = await run_node(make_config(config(plc.port)))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 15)
    assert rn.node.health()["connectors"][0]["details"]["variables"] == 4  # not the string
    assert "plant/hall/press/label" not in rn.node.registry
    await plc.set("force", 12.5, ua.VariantType.Double)
    await plc.set("strokes", 70_000, ua.VariantType.UInt32)
    await plc.set("running", True, ua.VariantType.Boolean)
    await wait_until(lambda: "plant/hall/press/force" in rn.node.registry)
    await wait_until(
        lambda: (
            rn.node.store.last(
                [rn.node.registry.get("plant/hall/press/running").id]
            ).values.tolist()
            == [1.0]
        ),
        10,
    )
    assert await samples(rn, "plant/hall/press/force") == ([STAMP_MS], [12.5])
    assert await samples(rn, "plant/hall/press/strokes") == ([STAMP_MS], [70_000.0])

    conn = rn.node.connectors[0][0]
    assert isinstance(conn, OpcUaConnector)
    await conn.write("plant/hall/press/speed_sp", 64.0)
    assert await plc.vars["speed_sp"].read_value() == 64.0

    # The server goes away and comes back: the connector reconnects and subscribes again.
    await plc.server.stop()
    await wait_until(lambda: not rn.node.health()["connectors"][0]["connected"], 15)
    plc.server = Server()
    await plc.start()
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"], 20)
    await plc.set("force", 99.0, ua.VariantType.Double, STAMP + timedelta(minutes=1))
    force = rn.node.registry.get("plant/hall/press/force").id
    await wait_until(lambda: rn.node.store.last([force]).values.tolist() == [99.0], 10)
    assert rn.node.health()["connectors"][0]["errors"] >= 1

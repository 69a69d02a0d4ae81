"""The OPC UA connector against an asyncua server started by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography.x509.oid import ExtendedKeyUsageOID

from genba.config import GenbaConfig
from genba.connectors.opcua import OpcUaConnector
from genba.testing import free_port
from tests.conftest import RunningNode, wait_until

# Newer than the initial values the server stamps at start, so they become the last values.
STAMP = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)  # never near a live stamp
STAMP_MS = int(STAMP.timestamp() * 1000)


class Plc:
    def __init__(self, port: int) -> None:
        self.port = port
        self.server = Server()
        self.vars: dict[str, Any] = {}

    async def start(self, secure: Callable[[Server], Awaitable[None]] | None = None) -> None:
        await self.server.init()
        self.server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/plc/")
        if secure is None:
            self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            await secure(self.server)
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


async def _certificate(d: Path, name: str, uri: str, use: Any) -> tuple[Path, Path]:
    """A self-signed certificate in ``d`` (DER) and its key beside ``d`` (PEM)."""
    key, cert = d.parent / f"{name}.key.pem", d / f"{name}.der"
    await setup_self_signed_certificate(
        key, cert, uri, "localhost", [use], {"commonName": name, "organizationName": "genba test"}
    )
    return cert, key


async def test_basic256sha256_sign_and_encrypt_with_certificates(
    make_config: Callable[[str], GenbaConfig], run_node: Any, tmp_path: Path
) -> None:
    """The server takes only SignAndEncrypt and only the client certificate it trusts."""
    trusted = tmp_path / "trusted"
    for d in (trusted, tmp_path / "server", tmp_path / "stranger"):
        d.mkdir()
    server_cert, server_key = await _certificate(
        tmp_path / "server", "server", "urn:test:plc", ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_cert, client_key = await _certificate(
        trusted, "genba", "urn:genba:client", ExtendedKeyUsageOID.CLIENT_AUTH
    )
    stranger_cert, stranger_key = await _certificate(
        tmp_path / "stranger", "stranger", "urn:genba:client", ExtendedKeyUsageOID.CLIENT_AUTH
    )

    async def secure(server: Server) -> None:
        await server.set_application_uri("urn:test:plc")
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        await server.load_certificate(str(server_cert))
        await server.load_private_key(str(server_key))
        store = TrustStore([trusted], [])
        await store.load()
        server.set_certificate_validator(
            CertificateValidator(
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT,
                store,
            ).validate
        )

    plc = Plc(free_port())
    await plc.start(secure)
    try:
        secure_options = f"""
security = "Basic256Sha256_SignAndEncrypt"
certificate = "{{cert}}"
private_key = "{{key}}"
server_certificate = "{server_cert}"
"""
        text = config(plc.port)
        connector = "\n[[connector]]" + text.split("[[connector]]")[1]
        stranger = connector.replace(
            'name = "press-ua"', 'name = "stranger"'
        ) + secure_options.format(cert=stranger_cert, key=stranger_key)
        plain = connector.replace('name = "press-ua"', 'name = "plain"')  # security None
        rn: RunningNode = await run_node(
            make_config(
                text + secure_options.format(cert=client_cert, key=client_key) + stranger + plain
            )
        )
        ours, theirs, insecure = (ctx.health for _, ctx in rn.node.connectors)
        await wait_until(lambda: ours.connected, 15)
        await plc.set("force", 31.5, ua.VariantType.Double)
        for _ in range(100):  # encrypted, signed, and stored at its source time
            if await samples(rn, "plant/hall/press/force") == ([STAMP_MS], [31.5]):
                break
            await asyncio.sleep(0.05)
        assert await samples(rn, "plant/hall/press/force") == ([STAMP_MS], [31.5])
        # An untrusted certificate is refused, and so is a client without security.
        await wait_until(lambda: theirs.errors >= 1 and insecure.errors >= 1, 15)
        assert not theirs.connected
        assert not insecure.connected
    finally:
        await plc.server.stop()

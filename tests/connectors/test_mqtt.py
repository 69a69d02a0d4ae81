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
    await wait_until(lambda: rn.node.records.pending == 0)  # in the store's record log now
    kept = rn.node.store.records("deadletter", key="uns")
    assert sorted(r.body["topic"] for r in kept) == sorted(reasons)
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
    assert "MqttError" in health["last_error"]


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


def _tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 that it signed: (ca, cert, key) PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder().subject_name(name("genba test CA")).issuer_name(name("genba test CA"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = (d / "ca.pem", d / "server.pem", d / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_tls_with_user_and_password_over_mqtt_5(
    make_config: Callable[[str], GenbaConfig], run_node: Any, tmp_path: Path
) -> None:
    from genba.testing import Mosquitto

    ca, cert, key = _tls_files(tmp_path)
    passwords = tmp_path / "passwords"
    made = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-c", "-b", str(passwords),
        "genba", "s3cret",
    )  # fmt: skip
    assert await made.wait() == 0
    broker = Mosquitto(
        tmp_path,
        options=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\npassword_file {passwords}",
        anonymous=False,
    )
    broker.start()
    try:
        secure = f'tls = true\nca_file = "{ca}"\nusername = "genba"\nprotocol = "5"\n'
        text = config(broker, secure + 'password = "s3cret"')
        wrong = "\n[[connector]]" + config(broker, secure + 'password = "wrong"').split(
            "[[connector]]"
        )[1].replace('name = "uns"', 'name = "intruder"')
        rn: RunningNode = await run_node(make_config(text + wrong))
        ok, refused = (ctx.health for _, ctx in rn.node.connectors)
        await wait_until(lambda: ok.connected, 15)
        proc = await asyncio.create_subprocess_exec(
            shutil.which("mosquitto_pub") or "mosquitto_pub", "-h", "127.0.0.1",
            "-p", str(broker.port), "--cafile", str(ca), "-u", "genba", "-P", "s3cret",
            "-q", "1", "-t", "plant/secure/t", "-m", f'{{"value": 4.25, "timestamp": {NOW_MS}}}',
        )  # fmt: skip
        assert await proc.wait() == 0
        await wait_until(lambda: rn.node.writer.stats.stored_samples >= 1)
        got = await samples(rn, "plant/secure/t")
        assert (got["ts_ms"], got["value"]) == ([NOW_MS], [4.25])
        await wait_until(lambda: refused.errors >= 1, 15)
        assert not refused.connected
        assert "password" in refused.last_error.lower() or "authoriz" in refused.last_error.lower()
    finally:
        broker.stop()


async def test_a_flood_of_new_topics_stops_at_max_tags_as_dead_letters(
    make_config: Callable[[str], GenbaConfig], run_node: Any, mqtt_broker: Broker
) -> None:
    rn: RunningNode = await run_node(make_config(config(mqtt_broker, "max_tags = 3")))
    await wait_until(lambda: rn.node.health()["connectors"][0]["connected"])
    for i in range(6):
        await pub(mqtt_broker, f"plant/x/t{i}", "1")
    await pub(mqtt_broker, "plant/x/t0", "2")  # a known tag still flows
    await wait_until(lambda: rn.node.health()["connectors"][0]["dead_letters"] == 3)
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 4)
    assert sorted(t.path for t in rn.node.registry if t.path.startswith("plant/")) == [
        "plant/x/t0", "plant/x/t1", "plant/x/t2",
    ]  # fmt: skip
    reason = (await rn.http.get("/api/deadletter")).json()["records"][0]["reason"]
    assert "max_tags = 3" in reason
    assert rn.node.health()["connectors"][0]["connected"] is True

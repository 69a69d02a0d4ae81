"""Crash safety: SIGKILL during heavy ingest loses nothing that was acknowledged, doubles nothing.

HTTP: a client posts batches to `POST /api/ingest` of a `genba up` process as fast as it
answers; the node answers only once a batch is durable. MQTT: a publisher sends QoS 1 messages
to a broker that genba reads with a persistent session, acknowledging each message only once
its samples are stored. The node is killed with SIGKILL mid-stream (and, for MQTT, started
again to collect what the broker kept for it); then the store is opened: every acknowledged
row is there, and no row is there twice. Run on each backend.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker, stored_rows
from tests.test_process import UpProcess

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]
ROWS = 2_000  # per request
T0_MS = 1_767_225_600_000


def _body(i: int) -> str:
    """Request ``i``: ROWS rows of 100 tags, timestamps unique across requests."""
    k = np.arange(ROWS) + i * ROWS
    lines = ["tag,timestamp,value"] + [
        f"crash/t/l/m/tag{t},{T0_MS + s},{v}"
        for t, s, v in zip(
            (k % 100).tolist(), (k // 100).tolist(), (k * 0.25).tolist(), strict=True
        )
    ]
    return "\n".join(lines)


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_sigkill_during_heavy_ingest_keeps_every_acknowledged_row_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = '[store]\nkind = "duckdb"\n'
    if kind == "postgres":
        store = f'[store]\nkind = "postgres"\ndsn = "{request.getfixturevalue("postgres_dsn")}"\n'
    config = tmp_path / "genba.toml"
    config.write_text(f'[node]\nname = "crash"\nhttp = "127.0.0.1:0"\n{store}')
    up = UpProcess(config)
    acked: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=up.url, timeout=10) as http:
            i = threading.get_ident() % 1000 * 100_000  # each client its own rows
            while not stop.is_set():
                try:
                    r = http.post(
                        "/api/ingest", content=_body(i), headers={"content-type": "text/csv"}
                    )
                except httpx.HTTPError:
                    return  # the node is gone
                if r.status_code == 200 and r.json()["accepted"] == ROWS:
                    acked.append(i)
                i += 1

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    up.proc.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
    up.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(15)
    up.kill()
    assert len(acked) >= 20, up.log.read_text()

    rows = stored_rows(config)
    assert len({(tag, ts) for tag, ts, _, _ in rows}) == len(rows), "a row is stored twice"
    stored = {(tag, ts // 1_000_000, v) for tag, ts, v, _ in rows}
    for i in acked:
        k = np.arange(ROWS) + i * ROWS
        want = zip(
            [f"crash/t/l/m/tag{t}" for t in (k % 100).tolist()],
            (T0_MS + k // 100).tolist(),
            (k * 0.25).tolist(),
            strict=True,
        )
        missing = set(want) - stored
        assert not missing, f"acknowledged request {i}: {len(missing)} rows not stored"


SAMPLES = 50  # per MQTT message: 50 samples of one of 20 tags


def _message(i: int) -> tuple[str, bytes]:
    """MQTT message ``i``: topic and payload, its samples unique across messages."""
    ts = T0_MS + (i // 20) * SAMPLES + np.arange(SAMPLES)
    values = i * 1000.0 + np.arange(SAMPLES)
    rows = [{"timestamp": int(t), "value": float(v)} for t, v in zip(ts, values, strict=True)]
    return f"crash/t/l/m/tag{i % 20}", orjson.dumps(rows)


def _expected(i: int) -> set[tuple[str, int, float]]:
    topic, payload = _message(i)
    return {(topic, r["timestamp"], r["value"]) for r in orjson.loads(payload)}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_sigkill_during_mqtt_ingest_keeps_every_broker_acknowledged_sample_once(
    kind: str, tmp_path: Path, mqtt_broker: Broker, request: pytest.FixtureRequest
) -> None:
    store = '[store]\nkind = "duckdb"\n'
    if kind == "postgres":
        store = f'[store]\nkind = "postgres"\ndsn = "{request.getfixturevalue("postgres_dsn")}"\n'
    config = tmp_path / "genba.toml"
    config.write_text(
        f'[node]\nname = "crash"\nhttp = "127.0.0.1:0"\n{store}'
        f'[[connector]]\nkind = "mqtt"\nport = {mqtt_broker.port}\ntopics = ["crash/#"]\n'
        'client_id = "genba-crash"\n'  # the same session across the restart
    )
    up = UpProcess(config)
    sent: list[paho.MQTTMessageInfo] = []  # message i is sent[i]
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    pub.max_inflight_messages_set(100)
    pub.connect(mqtt_broker.host, mqtt_broker.port)
    pub.loop_start()
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            sent.append(pub.publish(*_message(len(sent)), qos=1))
            if len(sent) > 200 and not sent[-200].is_published():
                time.sleep(0.001)  # let the broker catch up

    thread = threading.Thread(target=publish)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # heavy ingest under way: kill it
        if up.http.get("/api/health").json()["store"]["stored_samples"] >= 20_000:
            break
        time.sleep(0.05)
    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait(10)
    up.kill()
    time.sleep(0.5)  # the broker queues these for genba's session
    stop.set()
    thread.join(10)
    pub.loop_stop()
    pub.disconnect()
    acked = [i for i, info in enumerate(sent) if info.is_published()]  # by the broker
    assert len(acked) >= 400, up.log.read_text()

    again = UpProcess(config)  # the broker hands over what genba had not acknowledged
    try:
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 2.0:  # until the backlog is in
            n = again.http.get("/api/health").json()["bus"]["published_samples"]
            if n != last:
                last, quiet_since = n, time.monotonic()
            time.sleep(0.1)
        again.stop(signal.SIGTERM)
    finally:
        again.kill()

    rows = stored_rows(config)
    assert len({(tag, ts) for tag, ts, _, _ in rows}) == len(rows), "a sample is stored twice"
    stored = {(tag, ts // 1_000_000, v) for tag, ts, v, _ in rows}
    missing = [i for i in sorted(acked) if not _expected(i) <= stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged messages not stored"

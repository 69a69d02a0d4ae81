"""Crash safety: SIGKILL during heavy ingest loses nothing that was acknowledged, doubles nothing.

A client posts batches to `POST /api/ingest` of a `genba up` process as fast as it answers;
the node answers only once a batch is durable. The node is killed with SIGKILL mid-stream,
then the store is opened again: every acknowledged row is there, and no row is there twice.
Run on each backend.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import stored_rows
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

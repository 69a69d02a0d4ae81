"""`genba up` as a user runs it: a separate process, stopped by a signal, started again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genba.config import load_config
from genba.historian import open_store
from genba.sim import SIGNALS
from tests.conftest import demo_config_text

pytestmark = pytest.mark.process
TAG = "berlin/packaging/line1/filler/motor_current"
N_TAGS = 3 * len(SIGNALS)  # the demo line: 3 machines


class UpProcess:
    def __init__(self, config: Path) -> None:
        self.log = config.parent / f"up-{time.monotonic_ns()}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genba", "up", "--config", str(config)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        self.url = self._wait_for(r"dashboard (http://[0-9.:]+)/", 20).group(1)
        self.http = httpx.Client(base_url=self.url, timeout=5)

    def _wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := re.search(pattern, self.log.read_text()):
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"no {pattern!r} in the output of genba up:\n{self.log.read_text()}")

    def stop(self, sig: int) -> tuple[int, int]:
        """Send ``sig``; return (received, stored) from the node's last words."""
        self.http.close()
        self.proc.send_signal(sig)
        assert self.proc.wait(20) == 0, self.log.read_text()
        self._out.close()
        m = self._wait_for(r"received (\d+) samples, stored (\d+)", 1)
        return int(m.group(1)), int(m.group(2))

    def kill(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "genba.toml"
    path.write_text(demo_config_text(rate_hz=10))
    return path


@pytest.fixture
def up(config: Path) -> Iterator[list[UpProcess]]:
    procs: list[UpProcess] = []
    yield procs
    for p in procs:
        p.kill()


def test_tags_appear_within_15_s_and_last_values_change(config: Path, up: list[UpProcess]) -> None:
    t0 = time.monotonic()
    node = UpProcess(config)
    up.append(node)
    while (
        len(node.http.get("/api/tags").json()) < N_TAGS
        or node.http.get(f"/api/tags/{TAG}/last").json()["value"] is None
    ):
        assert time.monotonic() - t0 < 15, "tags or values not there within 15 s"
        time.sleep(0.1)
    seen = {node.http.get(f"/api/tags/{TAG}/last").json()["ts_ms"]}
    for _ in range(3):
        time.sleep(0.3)
        seen.add(node.http.get(f"/api/tags/{TAG}/last").json()["ts_ms"])
    assert len(seen) >= 3, "the last value did not move"
    assert time.monotonic() - t0 < 15
    page = node.http.get("/")
    assert page.status_code == 200
    assert "/static/app.js" in page.text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stop_loses_nothing_and_restart_keeps_history(
    config: Path, up: list[UpProcess], sig: int
) -> None:
    first = UpProcess(config)
    up.append(first)
    while first.http.get("/api/health").json()["store"]["stored_samples"] < 200:
        time.sleep(0.1)
    received, stored = first.stop(sig)
    assert received == stored > 0

    cfg = load_config(config)
    store = open_store(cfg.store, data_dir=cfg.data_dir, read_only=True)
    try:
        assert store.count() == received
        newest_ms = int(store.last().ts_ns.max()) // 1_000_000
    finally:
        store.close()

    second = UpProcess(config)
    up.append(second)
    old = second.http.get(
        f"/api/tags/{TAG}/samples", params={"start": "-1h", "end": newest_ms + 1, "limit": 100000}
    ).json()
    assert old["ts_ms"][-1] == newest_ms
    assert len(old["value"]) == received // N_TAGS  # one sample of each tag per tick
    received2, stored2 = second.stop(signal.SIGTERM)
    assert received2 == stored2
    store = open_store(cfg.store, data_dir=cfg.data_dir, read_only=True)
    try:
        assert store.count() == received + received2
    finally:
        store.close()

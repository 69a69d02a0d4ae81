"""A full disk and a read-only data dir never stop the node, and lose nothing acknowledged.

The data dir of a `genba up` process lies on a small file system of its own: a tmpfs that
another program keeps full (DuckDB's write-ahead log and its checkpoints then fail with
ENOSPC, the spool beside it too); an ext4 image mounted ``errors=remount-ro`` on which the
kernel is told of an error (it turns the file system read-only under the open files, as it
does when a disk goes bad), later unmounted, checked and mounted again; or a data dir moved
away under the running node and back. HTTP clients post all the while and a simulated machine is polled. Through the
fault the node stays up, health says what is wrong, ingest answers 503 with ``Retry-After`` and
acknowledges nothing; when space returns, or the disk is mounted again, it goes on by itself.
Then every acknowledged row is in the store once, and the machine's samples from the outage
(held in memory) are there too.

Needs root (mount); CI runs as root.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import stored_rows
from tests.test_process import UpProcess

pytestmark = [
    pytest.mark.process,
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root"),
]
ROWS = 1_000  # per request
T0_MS = 1_767_225_600_000


def _body(i: int) -> str:
    k = np.arange(ROWS) + i * ROWS
    return "\n".join(
        ["tag,timestamp,value"]
        + [
            f"disk/t/l/m/tag{t},{T0_MS + s},{v}"
            for t, s, v in zip(
                (k % 50).tolist(), (k // 50).tolist(), (k * 0.5).tolist(), strict=True
            )
        ]
    )


def _want(i: int) -> set[tuple[str, int, float]]:
    k = np.arange(ROWS) + i * ROWS
    return set(
        zip(
            [f"disk/t/l/m/tag{t}" for t in (k % 50).tolist()],
            (T0_MS + k // 50).tolist(),
            (k * 0.5).tolist(),
            strict=True,
        )
    )


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@contextlib.contextmanager
def _mounted(kind: str, where: Path, scratch: Path) -> Iterator[Path]:
    where.mkdir()
    if kind == "tmpfs":
        _sh("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(where))
    else:
        image = scratch / "disk.ext4"
        _sh("truncate", "-s", "96M", str(image))
        _sh("mkfs.ext4", "-q", "-F", str(image))
        _sh("mount", "-o", "loop,errors=remount-ro", str(image), str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _config(tmp_path: Path, data_dir: Path) -> Path:
    config = tmp_path / "genba.toml"
    config.write_text(
        f'[node]\nname = "disk"\nhttp = "127.0.0.1:0"\ndata_dir = "{data_dir}"\n'
        '[store]\nkind = "duckdb"\ncheckpoint_threshold = "1MB"\ndisk_min_free_mb = 4\n'
        "flush_interval_ms = 50\n"
        '[[connector]]\nkind = "simulator"\nscenario = "demo"\nsample_rate_hz = 5\n'
    )
    return config


class Clients:
    """Two threads posting numbered requests; which were acknowledged, what else came back."""

    def __init__(self, url: str) -> None:
        self.acked: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.retry_after: set[str] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, args=(url, n)) for n in range(2)]
        for t in self._threads:
            t.start()

    def _post(self, url: str, n: int) -> None:
        i = n * 1_000_000
        with httpx.Client(base_url=url, timeout=30) as http:
            while not self._stop.is_set():
                r = http.post("/api/ingest", content=_body(i), headers={"content-type": "text/csv"})
                self.statuses[r.status_code] += 1
                if r.status_code == 200 and r.json()["accepted"] == ROWS:
                    self.acked.append(i)
                elif r.status_code == 503:
                    self.retry_after.add(r.headers.get("retry-after", ""))
                    time.sleep(0.2)
                i += 1

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(40)


def _wait(what: str, predicate: Callable[[], bool], timeout: float, up: UpProcess) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert up.proc.poll() is None, f"the node died:\n{up.log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, (
            f"no {what} in {timeout} s:\n{up.log.read_text()[-3000:]}"
        )
        time.sleep(0.1)


class Hog:
    """Another program that takes every byte the disk frees (a runaway log, say), until
    stopped; then its file is removed and the space is back."""

    def __init__(self, disk: Path) -> None:
        self.file = disk / "hog"
        self._stop = threading.Event()
        self._full = threading.Event()
        self._thread = threading.Thread(target=self._hog)
        self._thread.start()
        assert self._full.wait(30), "the disk did not fill"

    def _hog(self) -> None:
        chunk = b"\0" * 2**16
        with self.file.open("wb", buffering=0) as f:
            while not self._stop.is_set():
                try:
                    f.write(chunk)
                except OSError:
                    self._full.set()
                    time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.file.unlink()


def _read_only(disk: Path) -> None:
    dev = Path(subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(disk)], capture_output=True, text=True, check=True
    ).stdout.strip()).name  # fmt: skip
    Path(f"/sys/fs/ext4/{dev}/trigger_fs_error").write_text("1")


def _mount_again(disk: Path, scratch: Path) -> None:
    """What a technician does: unmount, check, mount read-write again."""
    _sh("umount", "-l", str(disk))
    subprocess.run(["e2fsck", "-fy", str(scratch / "disk.ext4")], capture_output=True)
    _sh("mount", "-o", "loop,errors=remount-ro", str(scratch / "disk.ext4"), str(disk))


@pytest.mark.parametrize("fault", ["full", "read-only", "vanished"])
def test_the_node_rides_out_a_disk_fault_and_loses_nothing_acknowledged(
    fault: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with _mounted("tmpfs" if fault == "full" else "ext4", tmp_path / "disk", scratch) as disk:
        config = _config(tmp_path, disk / "data")
        up = UpProcess(config)
        clients = Clients(up.url)
        try:
            _wait("acknowledged request", lambda: len(clients.acked) >= 10, 30, up)
            if fault == "full":
                hog = Hog(disk)
            elif fault == "read-only":
                _read_only(disk)
            else:  # moved away, as a mistaken clean-up or an unmounted disk would
                (disk / "data").rename(disk / "elsewhere")
            fault_ms = up.http.get("/api/health").json()["now_ms"]
            _wait("503", lambda: clients.statuses[503] >= 3, 60, up)
            seen: list[dict[str, Any]] = []

            def degraded() -> bool:
                seen.append(up.http.get("/api/health").json())
                h = seen[-1]
                return bool(h["status"] == "degraded" and h["store"]["held_samples"] > 0)

            _wait("storage problem in health", degraded, 30, up)
            health = seen[-1]
            assert any(p.startswith("storage:") for p in health["problems"]), health["problems"]
            assert health["store"]["accepting"] is False
            assert clients.retry_after == {"5"}
            time.sleep(2)  # the machine goes on being polled, into memory

            if fault == "full":
                hog.stop()
            elif fault == "read-only":
                _mount_again(disk, scratch)
            else:
                (disk / "elsewhere").rename(disk / "data")
            back = len(clients.acked)
            held = max(h["store"]["held_samples"] for h in seen)
            fixed = time.monotonic()
            _wait(
                "acknowledgement after the fault", lambda: len(clients.acked) >= back + 10, 60, up
            )
            resumed_s = time.monotonic() - fixed
            _wait("ok", lambda: up.http.get("/api/health").json()["status"] == "ok", 30, up)
            back_ms = up.http.get("/api/health").json()["now_ms"]
        finally:
            clients.stop()
            up.http.close()
            up.proc.send_signal(signal.SIGTERM)
            code = up.proc.wait(60)
            up.kill()
        assert code == 0, up.log.read_text()[-3000:]

        rows = stored_rows(config)
    assert len({(tag, ts) for tag, ts, _, _ in rows}) == len(rows), "a row is stored twice"
    stored = {(tag, ts // 1_000_000, v) for tag, ts, v, _ in rows}
    for i in clients.acked:
        missing = _want(i) - stored
        assert not missing, f"acknowledged request {i}: {len(missing)} rows not stored"
    polled = sorted(
        ts // 1_000_000 for tag, ts, _, _ in rows if not tag.startswith("disk/")
    )  # the simulated machine, collected while the store took nothing
    outage = [t for t in polled if fault_ms + 500 < t < back_ms]
    assert outage, "no sample of the polled machine from the outage was kept"
    assert clients.statuses.keys() <= {200, 503}, clients.statuses
    print(  # the figures docs/historian.md quotes (pytest -s shows them)
        f"\n{fault}: {len(clients.acked)} requests of {ROWS} rows acknowledged, all stored once; "
        f"{clients.statuses[503]} answered 503; up to {held} samples held in memory; "
        f"{len(outage)} polled samples from the {(back_ms - fault_ms) / 1000:.1f} s outage "
        f"stored; acknowledging again {resumed_s:.1f} s after the disk was back"
    )

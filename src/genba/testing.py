"""Helpers for tests and benchmarks that need real peers: a private Mosquitto broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A private Mosquitto (Debian's package) on a free port, with its state in ``workdir``.

    ``stop()`` ends it the way ``systemctl stop`` does (SIGTERM: it writes its persistence
    file, so QoS 1 messages queued for persistent sessions survive); ``start()`` brings it
    back on the same port.
    """

    def __init__(self, workdir: Path, *, options: str = "", anonymous: bool = True) -> None:
        """``options`` go under the listener (e.g. TLS ``cafile``/``certfile``/``keyfile``,
        ``password_file``); ``anonymous = False`` requires a user name and password."""
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise FileNotFoundError(
                "Debian's mosquitto is not installed; `./dev test` installs it "
                "(or: apt-get install mosquitto mosquitto-clients)"
            )
        self.exe, self.host, self.port = exe, "127.0.0.1", free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"per_listener_settings false\nallow_anonymous {str(anonymous).lower()}\n"
            f"listener {self.port} 127.0.0.1\n{options}\n"
            f"persistence true\npersistence_location {workdir}/\n"
            "max_queued_messages 0\n"  # no limit: tests count every message
            "user root\n"  # as root, keep root: the default 'mosquitto' user cannot write here
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    err = proc.stderr.read() if proc.stderr else b""
                    raise RuntimeError(
                        f"mosquitto did not start: {err.decode(errors='replace')}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()

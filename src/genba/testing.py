"""Helpers for tests and benchmarks that need real peers: a private Mosquitto broker."""

from __future__ import annotations

import contextlib
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


def _pg_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise FileNotFoundError(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed; `./dev test` "
            "installs them (or: apt-get install postgresql)"
        )
    return found[-1].parent


class PostgreSQL:
    """A private PostgreSQL server (Debian's package) on a free port, in a temp directory.

    As root it runs as the ``postgres`` user (PostgreSQL refuses to run as root). Trust
    authentication on 127.0.0.1 only; ``dsn(db)`` connects as the ``postgres`` superuser.
    """

    def __init__(self) -> None:
        import os
        import tempfile

        self.bindir = _pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="genba-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.process: subprocess.Popen[bytes] | None = None

    def _run(self, *args: str) -> None:
        r = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False)
        if r.returncode:
            raise RuntimeError(f"{Path(args[0]).name} failed: {r.stderr.strip() or r.stdout}")

    def start(self) -> None:
        data = self.dir / "data"
        if not data.exists():
            self._run(
                str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--no-sync",
            )  # fmt: skip
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=256MB",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate, as pg_ctl takes them)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "stop")

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def remove(self) -> None:
        """Stop the server if it runs and delete its directory."""
        with contextlib.suppress(RuntimeError):  # it was not running
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

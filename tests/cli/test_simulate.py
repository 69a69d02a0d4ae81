"""`genba simulate` as a user runs it: batch with ground truth, and serving devices."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pymodbus.client import ModbusTcpClient

from genba.cli import cli
from genba.testing import free_port


def test_batch_run_writes_the_ground_truth(tmp_path: Path) -> None:
    args = ["simulate", "--hours", "26", "--truth", str(tmp_path / "t"), "--start", "2026-01-05"]
    r = CliRunner().invoke(cli, args, prog_name="genba")
    assert r.exit_code == 0, r.stderr
    assert "simulated 24 of 26 h" in r.stderr
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    filler = summary["machines"]["berlin/packaging/line1/filler"]
    assert filler["all_time_s"] == 26 * 3600
    assert 0 < filler["oee"] < 1
    assert (tmp_path / "t" / "timeline.parquet").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "give an output"),
        (["--scenario", "nope.toml", "--hours", "1"], "No scenario file at nope.toml"),
        (["--mqtt", "localhost:abc"], "expected HOST:PORT"),
        (["--hours", "1", "--start", "soon"], "Cannot read the time 'soon'"),
    ],
)
def test_bad_invocations_say_what_to_do(args: list[str], fragment: str) -> None:
    r = CliRunner().invoke(cli, ["simulate", *args], prog_name="genba")
    assert r.exit_code != 0
    assert fragment in r.stderr


@pytest.mark.process
def test_serves_modbus_faster_than_real_time_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "sim.log").open("w")
    proc = subprocess.Popen(
        # Monday 09:00 in Berlin: in a shift, an hour before the break
        [sys.executable, "-m", "genba", "simulate", "--modbus", str(port), "--speed", "60",
         "--start", "2026-01-05T08:00:00Z"],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    client = ModbusTcpClient("127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 20
        while not client.connect():
            assert time.monotonic() < deadline, (tmp_path / "sim.log").read_text()
            time.sleep(0.2)

        def good_count() -> int:  # filler good_count: machine 0, signal 12, uint32
            regs = client.read_holding_registers(24, count=2, device_id=1).registers
            return int(struct.unpack(">I", struct.pack(">HH", *regs))[0])

        first = good_count()
        time.sleep(2.0)  # two real seconds are two simulated minutes
        assert good_count() - first > 30
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        log.close()
    assert "stopped at" in (tmp_path / "sim.log").read_text()

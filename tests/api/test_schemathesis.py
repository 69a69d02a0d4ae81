"""Schemathesis, a tool genba did not write, over every operation of the OpenAPI.

A `genba up` process runs the simulated demo plant; schemathesis' CLI throws the examples,
coverage, fuzzing and stateful phases at every operation its ``/openapi.json`` declares,
within a time budget (``GENBA_SCHEMATHESIS_S``, default 75 s; ``GENBA_SCHEMATHESIS_SEED`` picks
another seed). Checks: no 5xx, every status and content type declared, every body and header
as the schema says. Afterwards the node is alive and still collecting, samples stored before
are all there, and it stops cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import demo_config_text
from tests.test_process import UpProcess

pytestmark = [pytest.mark.process, pytest.mark.timeout(400)]
BUDGET_S = int(os.environ.get("GENBA_SCHEMATHESIS_S", "75"))
SEED = os.environ.get("GENBA_SCHEMATHESIS_SEED", "14")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])  # fmt: skip
T0_MS = 1_767_225_600_000
KNOWN = "check/a/l/m/known"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    config = tmp_path / "genba.toml"
    config.write_text(demo_config_text(rate_hz=2), encoding="utf-8")
    up = UpProcess(config)
    try:
        rows = "\n".join(f"{KNOWN},{T0_MS + i * 1000},{i * 0.5}" for i in range(100))
        r = up.http.post(
            "/api/ingest",
            content="tag,timestamp,value\n" + rows,
            headers={"content-type": "text/csv"},
        )
        assert r.json()["accepted"] == 100
        stored_before = up.http.get("/api/health").json()["store"]["stored_samples"]

        st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert st, "schemathesis is a test dependency: pip install -e '.[test]'"
        run = subprocess.run(
            [
                st, "run", f"{up.url}/openapi.json",
                "--phases", "examples,coverage,fuzzing,stateful",
                "--checks", CHECKS,
                "--max-time", str(BUDGET_S),
                "--seed", SEED,
                # {name:path} parameters: hypothesis filters many generated paths; not a finding
                "--suppress-health-check", "filter_too_much",
                "--request-timeout", "30",
                "--report", "junit", "--report-dir", str(tmp_path / "schemathesis"),
            ],
            capture_output=True, text=True, timeout=BUDGET_S + 240, check=False,
            cwd=tmp_path,  # its example cache (.schemathesis/) stays out of the checkout
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-12_000:] + run.stderr[-3000:]
        assert "passed" in run.stdout

        assert up.proc.poll() is None, up.log.read_text()[-3000:]
        health = up.http.get("/api/health").json()
        assert health["store"]["stored_samples"] > stored_before  # still collecting
        assert health["store"]["errors"] == 0
        assert not [p for p in health["problems"] if not p.startswith("disk:")], health
        got = up.http.get(
            f"/api/tags/{KNOWN}/samples",
            params={"start": T0_MS, "end": T0_MS + 100_000, "limit": 100_000},
        ).json()
        mine = {(t, v) for t, v in zip(got["ts_ms"], got["value"], strict=True)}
        assert {(T0_MS + i * 1000, i * 0.5) for i in range(100)} <= mine  # fuzzing may add
    finally:
        up.http.close()
        up.proc.send_signal(signal.SIGTERM)
        code = up.proc.wait(60)
        up.kill()
    assert code == 0, up.log.read_text()[-3000:]

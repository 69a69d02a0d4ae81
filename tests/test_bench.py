"""Benchmarks are measured by hand, not in CI; this only keeps them runnable."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_ingest_benchmark_runs_and_prints_its_table() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--points", "20000", "--runs", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| path | median s | points/s | × baseline |"
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| bus → writer → duckdb",
        "| duckdb append (store alone)",
        "| sqlite executemany (baseline)",
    ]

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


def test_simulate_benchmark_runs_and_prints_its_tables() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate.py"), "--runs", "1", "--hours", "1",
         "--steps", "2", "--sizes", "5", "--batch-plants", "demo"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "| demo | 42 | 1 h |" in r.stdout
    assert "| 5 machines | 70 |" in r.stdout
    assert "largest plant measured that holds real time at 1 Hz: 70 tags" in r.stdout


def test_connect_benchmark_runs_and_prints_its_tables() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "connect.py"), "--json-messages", "2000",
         "--spb-messages", "200", "--runs", "1", "--latency-s", "1"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line.split(" | ")[0] for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows == [
        "| path", "| json, 1 metric/msg, MQTT 3.1.1", "| json, 1 metric/msg, MQTT 5",
        "| json, 1 metric/msg, QoS 1, ack when stored",
        "| json, 1 metric/msg, QoS 1, ack when received", "| sparkplug, 100 metrics/msg", "| paho json subscriber (baseline)", "| messages", "| 1,500",
    ]  # fmt: skip


def test_historian_benchmark_runs_and_prints_its_tables() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "historian.py"), "--tags", "20", "--samples", "500",
         "--runs", "1"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line.split(" | ")[0] for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows == [
        "| backend", "| duckdb batch append", "| postgres binary COPY",
        "| sqlite executemany (baseline)", "| backend", "| duckdb", "| postgres",
    ]  # fmt: skip


def test_kpi_benchmark_agrees_with_its_baseline_and_prints_its_table() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kpi.py"), "--machines", "5", "--days", "3",
         "--runs", "1", "--store-days", "1"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr  # it also fails when genba and pandas disagree
    rows = [line.split(" | ")[0] for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows == [
        "| implementation", "| genba (numpy: repeat + bincount)", "| pandas groupby (baseline)",
        "| from the store (demo plant, DuckDB)", "| 1 days, 3 machines, 42 tags at 1 Hz",
        "| reading the 18 signal tags, 1 days (DuckDB)", "| raw samples (Store.raw)",
        "| runs in SQL windows (RUNS_SQL)", "| runs in numpy after one scan (DuckDB's Store.runs)",
    ]  # fmt: skip


def test_dashboard_benchmark_runs_and_prints_its_table() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dashboard.py"), "--runs", "1"],
        capture_output=True, text=True, check=False, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line.split(" | ")[:2] for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        ["| aggregates at the zoom level", "672"],
        ["| every raw sample (baseline)", "604,800"],
    ]


def test_tags_benchmark_runs_and_prints_its_table() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tags.py"), "--tags", "100,200", "--runs", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| rows | new tags: s | one tag (baseline): s")
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| 100", "| 200"]


def test_fuzz_benchmark_runs_finds_no_escape_and_prints_its_table() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--payloads", "3000",
         "--baseline", "500"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    rows = [line.split(" | ") for line in r.stdout.splitlines() if line.startswith("| ")]
    assert [row[0] for row in rows[1:]] == ["| json", "| sparkplug", "| csv", "| arrow"]
    assert all(row[6] == "0" and row[-1] == "yes |" for row in rows[1:])  # escapes, valid after

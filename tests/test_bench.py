"""Benchmarks are measured by hand, not in CI; this only keeps them runnable."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _run(script: str, args: str, timeout: int = 120) -> str:
    """What ``bench/<script>.py args`` prints, once it has exited 0."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{script}.py"), *args.split()],
        capture_output=True, text=True, check=False, timeout=timeout,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_ingest_benchmark_runs_and_prints_its_table() -> None:
    out = _run("ingest", "--points 20000 --runs 1")
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| path | median s | points/s | × baseline |"
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| bus → writer → duckdb",
        "| duckdb append (store alone)",
        "| sqlite executemany (baseline)",
    ]


def test_simulate_benchmark_runs_and_prints_its_tables() -> None:
    out = _run("simulate", "--runs 1 --hours 1 --steps 2 --sizes 5 --batch-plants demo")
    assert "| demo | 42 | 1 h |" in out
    assert "| 5 machines | 70 |" in out
    assert "largest plant measured that holds real time at 1 Hz: 70 tags" in out


def test_connect_benchmark_runs_and_prints_its_tables() -> None:
    out = _run("connect", "--json-messages 2000 --spb-messages 200 --runs 1 --latency-s 1")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows == [
        "| path", "| json, 1 metric/msg, MQTT 3.1.1", "| json, 1 metric/msg, MQTT 5",
        "| json, 1 metric/msg, QoS 1, ack when stored",
        "| json, 1 metric/msg, QoS 1, ack when received", "| sparkplug, 100 metrics/msg", "| paho json subscriber (baseline)", "| paho json subscriber, QoS 1",
        "| paho subscriber counting the Sparkplug DDATA, 100 metrics/msg", "| messages", "| 1,500",
    ]  # fmt: skip


def test_historian_benchmark_runs_and_prints_its_tables() -> None:
    out = _run("historian", "--tags 20 --samples 500 --runs 1")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows == [
        "| backend", "| duckdb batch append", "| postgres binary COPY",
        "| sqlite executemany (baseline)", "| backend", "| duckdb", "| postgres",
    ]  # fmt: skip


def test_kpi_benchmark_agrees_with_its_baseline_and_prints_its_table() -> None:
    # the script exits 1 when genba and pandas disagree
    # --fleet also checks the store's answer against the prepared events (running seconds, parts)
    out = _run("kpi", "--machines 12 --days 3 --runs 1 --store-days 1 --fleet")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows == [
        "| implementation", "| genba (numpy: repeat + bincount)", "| pandas groupby (baseline)",
        "| from the store (demo plant, DuckDB)", "| 1 days, 3 machines, 42 tags at 1 Hz",
        "| reading the 18 signal tags, 1 days (DuckDB)", "| raw samples (Store.raw)",
        "| runs in SQL windows (RUNS_SQL)", "| runs in numpy after one scan (DuckDB's Store.runs)",
        "| from the store (12 machines, 3 days, DuckDB)", "| state, reason, product on change; counters every 60 s",
    ]  # fmt: skip


def test_ai_benchmark_runs_and_prints_its_table() -> None:
    out = _run("ai", "--machines 12 --rows 20000 --runs 1")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows == [
        "| operation", "| PCA score, 20,000 rows × 6 signals",
        "| bus path: take a batch of every tag", "| bus path: one tick, a row a machine scored",
    ]  # fmt: skip


def test_dashboard_benchmark_runs_and_prints_its_table() -> None:
    out = _run("dashboard", "--runs 1", timeout=180)
    rows = [line.split(" | ")[:2] for line in out.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        ["| aggregates at the zoom level", "672"],
        ["| every raw sample (baseline)", "604,800"],
    ]


def test_tags_benchmark_runs_and_prints_its_table() -> None:
    out = _run("tags", "--tags 100,200 --runs 1")
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| rows | new tags: s | one tag (baseline): s")
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| 100", "| 200"]


def test_fuzz_benchmark_runs_finds_no_escape_and_prints_its_table() -> None:
    out = _run("fuzz", "--payloads 3000 --baseline 500", timeout=300)
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ")]
    assert [row[0] for row in rows[1:]] == ["| json", "| sparkplug", "| csv", "| arrow"]
    assert all(row[6] == "0" and row[-1] == "yes |" for row in rows[1:])  # escapes, valid after


def test_layout_benchmark_runs_and_prints_its_table() -> None:
    out = _run("layout", "--sizes 0.02 --tags 20 --runs 1 --compact-rows 2000")
    rows = [line.split(" | ")[:2] for line in out.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        ["| 0 M", "arrival order (baseline)"], ["| 0 M", "segments by tag"],
        ["|", "ratio baseline / segments"],
    ]  # fmt: skip


def test_transfer_benchmark_runs_and_prints_its_table() -> None:
    out = _run("transfer", "--points 20000 --runs 1")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows == [
        "| path", "| genba import into a stopped node", "| the same import again (all skipped)",
        "| genba export to Parquet", "| DuckDBStore.append of the same batches (baseline)",
    ]  # fmt: skip


def test_transfer_benchmark_on_postgres_runs_and_prints_its_table() -> None:
    out = _run("transfer", "--points 20000 --runs 1 --postgres")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows[-1] == "| PostgresStore.append of the same batches (baseline)"


def test_memory_benchmark_runs_and_prints_its_table() -> None:
    out = _run("memory", "--tags 1050 --hours 0.1 --speed 60 --every-min 3 --memory-limit 128MB")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ")]
    assert rows[0][0] == "| simulated h"
    assert len(rows) == 3  # the header, and a row each 3 simulated minutes
    assert float(rows[-1][4].replace(",", "")) > 0  # samples stored by the end


def test_scale_benchmark_runs_and_prints_its_table() -> None:
    out = _run("scale", "--tags 1050 --seconds 2 --warmup 1")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ")]
    assert rows[1][0] == "| 1,050"
    assert float(rows[1][1].replace(",", "")) > 0  # points/s stored

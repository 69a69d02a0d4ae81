"""``genba kpi`` and ``genba report`` on the store of a stopped node (a simulated day)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genba.cli import cli
from genba.config import load_config
from genba.historian.duckdb import DuckDBStore
from genba.sim import GroundTruth, Simulator, load_scenario, truth
from genba.tags import TagRegistry
from genba.types import SampleBatch

T0 = 1_767_571_200 * 10**9  # 2026-01-05T00:00Z
DAY = ["--start", "2026-01-05T00:00:00Z", "--end", "2026-01-06T00:00:00Z"]
LINE = "berlin/packaging/line1"


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    """`genba init` and one simulated day of the demo plant in its historian."""
    d = tmp_path_factory.mktemp("node")
    assert CliRunner().invoke(cli, ["init", str(d)]).exit_code == 0
    config = load_config(d / "genba.toml")
    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    reg = TagRegistry()
    tags = reg.ensure(sim.tag_specs())
    ts, values = sim.advance(86_400.0 + 1)
    store = DuckDBStore(config.data_dir / "historian.duckdb")
    store.save_tags(tags)
    ids = np.array([t.id for t in tags], dtype=np.int32)
    store.append(
        SampleBatch.from_columns(
            tag_ids=np.tile(ids, len(ts)), ts_ns=np.repeat(ts, len(ids)), values=values.ravel()
        )
    )
    store.close()
    return d, truth(sim, T0, T0 + 86_400 * 10**9)


def run(d: Path, *args: str) -> str:
    r = CliRunner().invoke(cli, [*args, "--config", str(d / "genba.toml")])
    assert r.exit_code == 0, r.output
    return r.stdout


def test_kpi_oee_json_matches_the_truth(node_dir: tuple[Path, GroundTruth]) -> None:
    d, tr = node_dir
    rows = json.loads(run(d, "kpi", "oee", "--asset", LINE, *DAY, "--format", "json"))["rows"]
    for row in rows[:3]:
        assert row["oee"] == pytest.approx(tr.machines[row["entity"]].oee, abs=0.005)


def test_kpi_oee_by_shift_as_csv(node_dir: tuple[Path, GroundTruth]) -> None:
    d, _ = node_dir
    out = list(
        csv.DictReader(
            io.StringIO(run(d, "kpi", "oee", "-a", LINE, *DAY, "--by", "shift", "--format", "csv"))
        )
    )
    # 2026-01-05 00:00Z is 01:00 in Berlin: the night shift of the 4th, then three shifts,
    # then the night of the 5th begun at 21:00Z
    periods = list(dict.fromkeys(r["period"] for r in out))
    assert periods == [
        "2026-01-04 night",
        "2026-01-05 early",
        "2026-01-05 late",
        "2026-01-05 night",
    ]
    assert {r["entity"] for r in out} == {
        LINE,
        *(f"{LINE}/{m}" for m in ("filler", "capper", "labeler")),
    }
    assert all(0 < float(r["oee_%"]) < 100 for r in out)


def test_kpi_tables_for_losses_reliability_cost(node_dir: tuple[Path, GroundTruth]) -> None:
    d, tr = node_dir
    text = run(d, "kpi", "losses", "-a", LINE, *DAY)
    assert "breakdowns_min" in text
    assert "reduced_speed_min" in text
    text = run(d, "kpi", "reliability", "-a", LINE, *DAY)
    assert "mtbf_h" in text
    cost = json.loads(run(d, "kpi", "cost", "-a", LINE, *DAY, "--format", "json"))
    line = tr.lines[LINE]
    assert cost["rows"][0]["cost_per_good_unit"] == pytest.approx(
        line.cost_per_good_unit, rel=0.005
    )


def test_report_is_one_self_contained_html_file(
    node_dir: tuple[Path, GroundTruth], tmp_path: Path
) -> None:
    d, _ = node_dir
    out = tmp_path / "week.html"
    r = CliRunner().invoke(
        cli,
        ["report", "--asset", "berlin", "--period", "day", "--at", "2026-01-05T12:00:00Z",
         "-o", str(out), "--config", str(d / "genba.toml")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert html.count("<svg") >= 4  # waterfall, losses, Pareto, costs
    assert "<script" not in html
    assert "http://" not in html
    assert "https://" not in html
    # the local day (Europe/Berlin) holding that time: midnight to midnight, not now - 24 h
    local_day = ["-s", "2026-01-04T23:00:00Z", "-e", "2026-01-05T23:00:00Z"]
    oee = json.loads(run(d, "kpi", "oee", "-a", "berlin", *local_day, "--format", "json"))
    assert f"{100 * oee['rows'][-1]['oee']:.1f} %" in html
    assert "2026-01-04T23:00:00.000Z" in html or "2026-01-05 00:00" in html


def test_kpi_errors_name_the_fix(node_dir: tuple[Path, GroundTruth]) -> None:
    d, _ = node_dir
    r = CliRunner().invoke(cli, ["kpi", "oee", "-a", "mars", "--config", str(d / "genba.toml")])
    assert r.exit_code == 1
    assert (
        "No machine of genba.toml is at or under 'mars'; lines: berlin/packaging/line1" in r.output
    )


def test_performance_above_100_percent_is_flagged_in_the_cli_and_the_report(
    node_dir: tuple[Path, GroundTruth], tmp_path: Path
) -> None:
    d, _ = node_dir
    # the filler's ideal cycle set to 2 s while it makes a part about every 1.25 s
    text = (d / "genba.toml").read_text()
    assert "ideal_cycle_time_s = 1.0\n" in text
    slow = tmp_path / "genba.toml"
    data_dir = (d / "genba.toml").parent / "genba-data"
    slow.write_text(
        text.replace("ideal_cycle_time_s = 1.0\n", "ideal_cycle_time_s = 2.0\n", 1).replace(
            'data_dir = "genba-data"', f'data_dir = "{data_dir}"'
        )
    )
    r = CliRunner().invoke(cli, ["kpi", "oee", "-a", LINE, *DAY, "--config", str(slow)])
    assert r.exit_code == 0, r.output
    assert "genba: warning: performance of berlin/packaging/line1/filler is" in r.stderr
    assert "set ideal_cycle_time_s in its [[machine]] to at most" in r.stderr
    out = tmp_path / "day.html"
    args = ["report", "-a", LINE, "--period", "day", "--at", "2026-01-05T12:00:00Z", "-o", str(out)]
    r = CliRunner().invoke(cli, [*args, "--config", str(slow)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert "Check before you trust these figures" in html
    assert "performance of berlin/packaging/line1/filler is" in html

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from genba.sim import Simulator, load_scenario, truth

H = 3600 * 10**9


def test_export_writes_timeline_failures_and_summary(tmp_path: Path) -> None:
    sim = Simulator(load_scenario("demo"), t0_ns=0)
    sim.advance(24 * 3600.0)
    tr = truth(sim, 6 * H, 18 * H)
    files = tr.to_files(tmp_path)
    assert [f.name for f in files] == ["timeline.parquet", "failures.csv", "summary.json"]
    timeline = pq.read_table(tmp_path / "timeline.parquet")
    assert timeline.column_names == ["machine", "start_ns", "end_ns", "state", "reason"]
    assert min(timeline["start_ns"].to_pylist()) == 6 * H
    summary = json.loads((tmp_path / "summary.json").read_text())
    filler = summary["machines"]["berlin/packaging/line1/filler"]
    assert filler["oee"] == pytest.approx(tr.machines["berlin/packaging/line1/filler"].oee)
    assert set(filler["losses_min"]) == {
        "breakdowns", "setup_adjustments", "small_stops", "reduced_speed",
        "startup_rejects", "production_rejects", "starved_blocked",
    }  # fmt: skip
    line = summary["lines"]["berlin/packaging/line1"]
    assert line["cost_per_good_unit"] > 0
    assert set(line["costs"]) == {"material", "energy", "labour", "machine_hours"}
    lines = (tmp_path / "failures.csv").read_text().splitlines()
    assert lines[0] == "machine,start,end,reason,wear_out"
    assert len(lines) - 1 == len(tr.failures)


def test_truth_of_the_future_or_of_nothing_is_refused() -> None:
    sim = Simulator(load_scenario("demo"), t0_ns=0)
    sim.advance(60.0)
    with pytest.raises(ValueError, match="advance it past"):
        truth(sim, 0, 2 * H)
    with pytest.raises(ValueError, match="is empty"):
        truth(sim, 10, 10)


def test_no_planned_time_gives_undefined_oee_not_zero() -> None:
    sim = Simulator(load_scenario("demo"), t0_ns=0)  # 1970-01-01 is a Thursday, 3 shifts
    sim.advance(3 * 3600.0)
    # 02:00–02:30 Berlin (01:00–01:30 UTC) is the night shift's break: nothing is planned.
    tr = truth(sim, 3600 * 10**9 + 60 * 10**9, 3600 * 10**9 + 25 * 60 * 10**9)
    m = tr.machines["berlin/packaging/line1/capper"]
    assert m.planned_s == pytest.approx(0.0, abs=30)  # a machine may finish its cycle first
    if m.planned_s == 0:
        assert m.oee is None
        assert m.availability is None


def test_trimmed_history_keeps_samples_and_recent_truth_whole() -> None:
    full = Simulator(load_scenario("demo"), t0_ns=0)
    kept = Simulator(load_scenario("demo"), t0_ns=0, retain_s=2 * 3600.0)
    a = [full.advance(h * 3600.0)[1] for h in range(1, 7)]
    b = [kept.advance(h * 3600.0)[1] for h in range(1, 7)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))  # samples unchanged
    assert len(kept.plant.logs.part) < len(full.plant.logs.part) / 2
    recent_full = truth(full, 4 * H, 6 * H).machines
    recent_kept = truth(kept, 4 * H, 6 * H).machines
    for path, m in recent_full.items():
        assert recent_kept[path].seconds == pytest.approx(m.seconds)
        assert recent_kept[path].good == m.good
    with pytest.raises(ValueError, match="was forgotten"):
        truth(kept, 0, 6 * H)

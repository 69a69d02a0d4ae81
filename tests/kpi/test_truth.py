"""KPIs from the stored samples of a simulated week against the simulator's ground truth.

The simulator knows what really happened (its own event logs, docs/simulator.md); genba only
sees the 1 Hz samples a real plant would send. Acceptance: availability, performance,
quality, OEE and each loss within 0.5 percentage points of the truth for every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from genba.clock import RealClock
from genba.config import example_config, parse_config
from genba.historian.duckdb import DuckDBStore
from genba.kpi import Kpi
from genba.sim import GroundTruth, Simulator, load_scenario, truth
from genba.tags import TagRegistry
from genba.types import SampleBatch
from tests.kpi.conftest import JsonKpi

T0 = 1_767_571_200 * 10**9  # Monday 2026-01-05 00:00Z
WEEK_S = 7 * 86_400
SIGNALS = ("state", "reason", "product", "good_count", "reject_count", "energy")
START, END = "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[JsonKpi, GroundTruth]]:
    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    reg = TagRegistry()
    tags = reg.ensure(sim.tag_specs())
    ids = np.array([t.id for t in tags], dtype=np.int32)
    want = np.array([p.rsplit("/", 1)[1] in SIGNALS for p in sim.tag_paths])
    store = DuckDBStore(Path(tmp_path_factory.mktemp("week")) / "week.duckdb")
    store.save_tags(tags)
    for hours in range(6, 7 * 24 + 6, 6):  # six simulated hours at a time, plus one second
        ts, values = sim.advance(min(hours * 3600.0, WEEK_S + 1.0))
        v = values[:, want]
        store.append(
            SampleBatch.from_columns(
                tag_ids=np.tile(ids[want], len(ts)),
                ts_ns=np.repeat(ts, v.shape[1]),
                values=v.ravel(),
            )
        )
    kpi = JsonKpi(Kpi(parse_config(example_config()), reg, store, RealClock()))
    yield kpi, truth(sim, T0, T0 + WEEK_S * 10**9)
    store.close()


def test_oee_and_losses_within_half_a_point_of_truth(week: tuple[JsonKpi, GroundTruth]) -> None:
    kpi, tr = week
    rows = [r for r in kpi.oee("berlin", START, END)["rows"] if r["level"] == "machine"]
    assert len(rows) == 3
    worst: dict[str, float] = {}
    for row in rows:
        m = tr.machines[row["entity"]]
        for k in ("availability", "performance", "quality", "oee", "teep"):
            assert abs(row[k] - getattr(m, k)) < 0.005, (row["entity"], k, row[k], getattr(m, k))
            worst[k] = max(worst.get(k, 0.0), abs(row[k] - getattr(m, k)) * 100)
        planned_min = m.planned_s / 60
        for loss, minutes in m.losses_min.items():
            err_pp = abs(row["losses_min"][loss] - minutes) / planned_min
            assert err_pp < 0.005, (row["entity"], loss, row["losses_min"][loss], minutes)
            worst[loss] = max(worst.get(loss, 0.0), err_pp * 100)
        # counted parts are exact: counters are read, not estimated
        assert row["counts"]["good"] == m.good
        assert row["counts"]["reject"] == m.rejects
        assert row["counts"]["startup_rejects"] == m.startup_rejects
    # shown with `pytest -s`: the largest deviation over the three machines, in points
    print("\nlargest deviation from the truth, percentage points:")
    print("\n".join(f"  {k:20s} {v:.3f}" for k, v in worst.items()))


def test_line_roll_up_weights_by_time_not_by_averaging(week: tuple[JsonKpi, GroundTruth]) -> None:
    kpi, tr = week
    rows = kpi.oee("berlin/packaging/line1", START, END)["rows"]
    line = next(r for r in rows if r["level"] == "line")
    ms = list(tr.machines.values())
    expected = sum(m.fully_productive_s for m in ms) / sum(m.planned_s for m in ms)
    assert line["oee"] == pytest.approx(expected, abs=0.005)
    # the constraint is the machine with the longest ideal cycle: the 1.0 s filler
    filler = tr.machines["berlin/packaging/line1/filler"]
    assert line["constraint"]["machine"] == "berlin/packaging/line1/filler"
    assert line["constraint"]["oee"] == pytest.approx(filler.oee, abs=0.005)


def test_failures_match_the_simulated_breakdowns(week: tuple[JsonKpi, GroundTruth]) -> None:
    kpi, tr = week
    d = kpi.reliability("berlin/packaging/line1", START, END)
    for row in d["rows"]:
        if row["level"] != "machine":
            continue
        true = [f for f in tr.failures if f["machine"] == row["entity"]]
        assert row["failures"] == len(true)
        repair_min = sum(f["end_s"] - f["start_s"] for f in true) / 60 / len(true)
        assert row["mttr_min"] == pytest.approx(repair_min, rel=0.01)
    by_reason = {r: v["failures"] for r, v in d["failures_by_reason"].items()}
    true_by: dict[str, int] = {}
    for f in tr.failures:
        true_by[f["reason"]] = true_by.get(f["reason"], 0) + 1
    assert by_reason == true_by


def test_costs_match_the_simulated_money(week: tuple[JsonKpi, GroundTruth]) -> None:
    kpi, tr = week
    (row,) = kpi.cost("berlin/packaging/line1", START, END)["rows"]
    line = tr.lines["berlin/packaging/line1"]
    for kind, value in line.costs.items():
        assert row["costs"][kind] == pytest.approx(value, rel=0.005), kind
    assert row["good_units"] == sum(line.finished.values())
    assert row["cost_per_good_unit"] == pytest.approx(line.cost_per_good_unit, rel=0.005)
    assert row["revenue"] == pytest.approx(line.revenue, rel=1e-9)
    assert row["margin"] == pytest.approx(line.margin, rel=0.005)
    assert sum(p["margin"] for p in row["by_product"]) == pytest.approx(row["margin"], rel=1e-9)
    # a loss in money: lost good units at the constraint × unit margin
    assert row["loss_money"]["breakdowns"]["money"] > 0
    assert 0 < row["wip_avg_units"] < 2 * 30 + 2  # two conveyors of 30 parts, two machines


def test_inventory_turnover_needs_the_stock_value_and_is_plausible_with_it(
    week: tuple[JsonKpi, GroundTruth],
) -> None:
    kpi, _ = week
    (row,) = kpi.cost("berlin/packaging/line1", START, END)["rows"]
    # the parts between machines are a lower bound of WIP, not the stock: no turnover from them
    assert row["inventory_turnover"] is None
    assert row["inventory_turnover_per_year"] is None
    text = example_config().replace(
        'path = "berlin/packaging/line1"',
        'path = "berlin/packaging/line1"\ninventory_value = 250000.0',
        1,
    )
    with_stock = JsonKpi(Kpi(parse_config(text), kpi.typed.registry, kpi.typed.store, RealClock()))
    (row,) = with_stock.cost("berlin/packaging/line1", START, END)["rows"]
    sold = row["material_of_goods_finished"] + row["total_cost"] - row["costs"]["material"]
    assert row["inventory_turnover"] == pytest.approx(sold / 250_000.0)
    assert row["inventory_turnover_per_year"] == pytest.approx(sold / 250_000.0 * 52.14, rel=1e-3)
    assert 1 < row["inventory_turnover_per_year"] < 100  # what plants report, not 778,830

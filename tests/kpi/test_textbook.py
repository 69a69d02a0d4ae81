"""OEE worked by hand: one shift with a break, a changeover, a breakdown, small stops, slow
cycles and rejects; the expected figures are computed in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genba.api._kpi_views import kpi_json
from genba.states import MachineState as S
from tests.kpi.conftest import NS, MakeKpi, at, steps

CONFIG = """
[[calendar]]
name = "day"
timezone = "UTC"
shift = [{ name = "early", start = "06:00", end = "14:00", breaks = [{ start = "10:00", minutes = 30 }] }]

[[line]]
path = "s/a/line"
calendar = "day"

[[machine]]
path = "s/a/line/press"
ideal_cycle_time_s = 1.0
signals = { startup_parts = 100, product_tag = "", energy_tag = "" }
"""
M = "s/a/line/press"
DAY = "2026-01-05T"
TIMELINE = [
    (DAY + "06:00:00", S.SETUP),  # 20 min changeover
    (DAY + "06:20:00", S.RUNNING),
    (DAY + "08:00:00", S.DOWN),  # 45 min breakdown
    (DAY + "08:45:00", S.RUNNING),
    (DAY + "10:00:00", S.PLANNED_STOP),  # the 30 min break
    (DAY + "10:30:00", S.RUNNING),
    (DAY + "11:00:00", S.SMALL_STOP),  # three 2 min small stops
    (DAY + "11:02:00", S.RUNNING),
    (DAY + "11:20:00", S.SMALL_STOP),
    (DAY + "11:22:00", S.RUNNING),
    (DAY + "11:40:00", S.SMALL_STOP),
    (DAY + "11:42:00", S.RUNNING),
]
TOTAL, STARTUP_REJECTS, PRODUCTION_REJECTS = 18_000, 20, 340


@pytest.fixture(params=["duckdb", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The hand-worked cases run on both historian backends."""
    return str(request.param)


def textbook_signals(end: str = DAY + "14:00:01") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    ts, state = steps(DAY + "06:00:00", [(t, float(s)) for t, s in TIMELINE], end)
    reason = np.where(state == S.DOWN, 31.0, 0.0)
    # Parts spread evenly over the running seconds (slow cycles: 18,000 parts in 379 min),
    # each completing at the end of its second.
    running = ts[(state == S.RUNNING) & (ts < at(DAY + "14:00:00"))]
    done = running[(np.arange(1, TOTAL + 1) * len(running) // TOTAL) - 1] + NS
    bad = np.zeros(TOTAL, dtype=bool)
    bad[:STARTUP_REJECTS] = True  # the first 20 of the 100 start-up parts
    bad[np.arange(1000, 1000 + 50 * PRODUCTION_REJECTS, 50)] = True
    good_n = np.searchsorted(done[~bad], ts, "right").astype(float)
    reject_n = np.searchsorted(done[bad], ts, "right").astype(float)
    return {
        f"{M}/state": (ts, state),
        f"{M}/reason": (ts, reason),
        f"{M}/good_count": (ts, good_n),
        f"{M}/reject_count": (ts, reject_n),
    }


def test_a_shift_worked_by_hand(make_kpi: MakeKpi) -> None:
    kpi = make_kpi(CONFIG, textbook_signals())
    (row,) = list(kpi.oee(M, DAY + "06:00:00Z", DAY + "14:00:00Z")["rows"])
    # planned = 480 min shift − 30 min break = 450 min
    # run = 450 − 20 setup − 45 down = 385 min (the 6 min of small stops are run time)
    # net run = 18,000 parts × 1 s = 300 min; fully productive = 17,640 good × 1 s = 294 min
    w = row["waterfall_min"]
    assert w["planned"] == pytest.approx(450)
    assert w["run"] == pytest.approx(385)
    assert w["net_run"] == pytest.approx(300)
    assert w["fully_productive"] == pytest.approx(294)
    assert row["availability"] == pytest.approx(385 / 450)  # 85.56 %
    assert row["performance"] == pytest.approx(300 / 385)  # 77.92 %
    assert row["quality"] == pytest.approx(17_640 / 18_000)  # 98.0 %
    assert row["oee"] == pytest.approx(294 / 450)  # 65.33 %
    assert row["teep"] == pytest.approx(294 / 480)  # OEE × utilisation 450/480
    los = row["losses_min"]
    assert los["breakdowns"] == pytest.approx(45)
    assert los["setup_adjustments"] == pytest.approx(20)
    assert los["small_stops"] == pytest.approx(6)
    assert los["reduced_speed"] == pytest.approx(385 - 6 - 300)  # 79 min of slow cycles
    assert los["startup_rejects"] == pytest.approx(20 / 60)  # 20 parts × 1 s
    assert los["production_rejects"] == pytest.approx(340 / 60)
    # planned − all six losses = fully productive time, exactly
    assert 450 - sum(v for k, v in los.items() if k != "starved_blocked") == pytest.approx(294)
    assert row["counts"] == {
        "good": 17_640.0,
        "reject": 360.0,
        "total": 18_000.0,
        "startup_rejects": 20.0,
        "unattributed": 0.0,
    }


def test_the_typed_answer_holds_raw_numbers_and_integer_times(make_kpi: MakeKpi) -> None:
    # what a component uses: no JSON, no formatted time; the API's JSON is made from it
    kpi = make_kpi(CONFIG, textbook_signals())
    answer = kpi.typed.oee(M, DAY + "06:00:00Z", DAY + "14:00:00Z")
    assert (answer.kind, answer.asset, answer.by) == ("oee", M, None)
    assert (answer.span.start_ns, answer.span.end_ns) == (
        at(DAY + "06:00:00"),
        at(DAY + "14:00:00"),
    )
    row = answer.row(M)
    assert (row.level, row.period, row.start_ns, row.end_ns) == (
        "machine", "all", at(DAY + "06:00:00"), at(DAY + "14:00:00"),
    )  # fmt: skip
    assert type(row.start_ns) is int
    assert row.figures["oee"] == pytest.approx(294 / 450)
    assert answer.not_counted == []
    assert answer.warnings == []
    as_sent = kpi_json(answer)["rows"][0]
    assert (as_sent["start"], as_sent["end"]) == (DAY + "06:00:00.000Z", DAY + "14:00:00.000Z")
    assert as_sent["oee"] == row.figures["oee"]
    stops = kpi.typed.downtime(M, DAY + "06:00:00Z", DAY + "14:00:00Z", "down")
    assert stops
    assert [s.state for s in stops] == [S.DOWN] * len(stops)
    assert sum(s.minutes for s in stops) == pytest.approx(45)
    assert all(type(s.start_ns) is int for s in stops)


def test_reliability_of_the_shift(make_kpi: MakeKpi) -> None:
    kpi = make_kpi(CONFIG, textbook_signals())
    d = kpi.reliability(M, DAY + "06:00:00Z", DAY + "14:00:00Z")
    row = d["rows"][0]
    assert row["failures"] == 1  # the breakdown; small stops and setups are not failures
    assert row["mtbf_h"] == pytest.approx(385 / 60)  # run time / failures
    assert row["mttr_min"] == pytest.approx(45)
    assert row["first_pass_yield"] == pytest.approx(0.98)
    assert row["throughput_per_h"] == pytest.approx(17_640 / 7.5)  # good per planned hour
    assert row["target"] == pytest.approx(27_000)  # 450 min at the ideal 1 s cycle
    assert d["failures_by_reason"] == {"jam": {"failures": 1, "minutes": pytest.approx(45)}}


def test_losses_pareto_names_the_reason(make_kpi: MakeKpi) -> None:
    kpi = make_kpi(CONFIG, textbook_signals())
    pareto = kpi.losses(M, DAY + "06:00:00Z", DAY + "14:00:00Z")["pareto"]
    assert pareto[0] == {
        "state": "down",
        "reason_code": 31,
        "reason": "jam",
        "category": "breakdown",
        "minutes": pytest.approx(45),
    }


def test_by_hour_adds_up_to_the_shift(make_kpi: MakeKpi) -> None:
    kpi = make_kpi(CONFIG, textbook_signals())
    rows = kpi.oee(M, DAY + "06:00:00Z", DAY + "14:00:00Z", by="hour")["rows"]
    assert [r["period"] for r in rows][:2] == ["2026-01-05T06:00Z", "2026-01-05T07:00Z"]
    assert sum(r["waterfall_min"]["planned"] for r in rows) == pytest.approx(450)
    assert sum(r["counts"]["good"] for r in rows) == 17_640
    # 10:00–11:00 holds the break: 30 min planned, of which 6 small-stop minutes were run time
    ten = next(r for r in rows if r["period"] == "2026-01-05T10:00Z")
    assert ten["waterfall_min"]["planned"] == pytest.approx(30)


def test_no_planned_time_is_undefined_not_zero(make_kpi: MakeKpi) -> None:
    kpi = make_kpi(CONFIG, textbook_signals())
    d = kpi.oee(M, DAY + "10:05:00Z", DAY + "10:25:00Z")  # inside the break
    row = d["rows"][0]
    assert row["waterfall_min"]["planned"] == 0
    for k in ("availability", "performance", "quality", "oee"):
        assert row[k] is None
    text = json.dumps(d, allow_nan=False)  # raises on NaN or Infinity
    assert '"oee": null' in text

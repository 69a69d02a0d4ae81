"""Edge cases: counter resets and rollovers, data gaps, a state change on a shift boundary,
daylight-saving changes, rules-mode state tracking, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from genba.calendar import Shift, ShiftCalendar
from genba.config import parse_config
from genba.errors import ConfigError, QueryError
from genba.historian import TimeRange
from genba.kpi import counter_increments, periods_of, track_states
from genba.states import MachineState as S
from tests.kpi.conftest import NS, MakeKpi, at, steps

TWO_SHIFTS = """
[[calendar]]
name = "two"
shift = [{ name = "early", start = "06:00", end = "14:00" }, { name = "late", start = "14:00", end = "22:00" }]

[[line]]
path = "s/a/line"
calendar = "two"

[[machine]]
path = "s/a/line/m"
ideal_cycle_time_s = 2.0
signals = { reason_tag = "", product_tag = "", energy_tag = "", reject_count_tag = "" }
"""
M = "s/a/line/m"
D = "2026-01-05T"


def test_counter_reset_and_rollover_are_increments() -> None:
    # 10→11 (+1), reset to 2 (2 counted since the reset), 2→5 (+3)
    assert counter_increments(np.array([10, 11, 2, 5.0]), counter_max=0).tolist() == [1, 2, 3]
    # a 16-bit counter: 65534→65535 (+1), rolls over to 3 (+4), 3→4 (+1)
    inc = counter_increments(np.array([65534, 65535, 3, 4.0]), counter_max=65535)
    assert inc.tolist() == [1, 4, 1]
    # a drop from low in the range is a reset, not a rollover
    assert counter_increments(np.array([100, 7.0]), counter_max=65535).tolist() == [7]


def test_counter_reset_mid_shift_counts_every_part(make_kpi: MakeKpi) -> None:
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", S.RUNNING)], D + "07:00:01")
    k = (ts - ts[0]) // NS
    # one part every 2 s (ideal); the PLC resets the counter just before 06:30:00, so the
    # sample then shows 1 (the part finished at 06:30:00) instead of 900
    good = np.where(ts < at(D + "06:30:00"), k // 2, (k - 1800) // 2 + 1).astype(float)
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)})
    row = kpi.oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    assert row["counts"]["good"] == 1800  # 3600 s / 2 s, none lost at the reset
    assert row["performance"] == pytest.approx(1.0)
    assert row["oee"] == pytest.approx(1.0)


def _gap_series(stale: bool) -> dict[str, tuple[np.ndarray, ...]]:
    """Running 06:00–07:00, a part every 2 s, no samples from 06:20 to 06:30; with ``stale``,
    the connector marked both tags stale (a BAD sample) at 06:20:00 when it lost the PLC."""
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", S.RUNNING)], D + "07:00:01")
    good = ((ts - ts[0]) // NS // 2).astype(float)
    keep = (ts < at(D + "06:20:00")) | (ts >= at(D + "06:30:00"))
    if stale:
        keep |= ts == at(D + "06:20:00")
    q = np.where(ts == at(D + "06:20:00"), 2, 0).astype(np.uint8)
    state = np.where(q == 2, np.nan, state)
    good = np.where(q == 2, np.nan, good)
    return {
        f"{M}/state": (ts[keep], state[keep], q[keep]),
        f"{M}/good_count": (ts[keep], good[keep], q[keep]),
    }


def test_a_value_holds_until_the_next_sample_while_the_source_is_alive(make_kpi: MakeKpi) -> None:
    # report by exception: ten quiet minutes with no stale mark are ten minutes of the last
    # state (the source said nothing had changed), and every part is placed
    kpi = make_kpi(TWO_SHIFTS, _gap_series(stale=False))
    row = kpi.oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    assert row["waterfall_min"]["unknown"] == 0
    assert row["counts"]["good"] == 1800
    assert row["counts"]["unattributed"] == 0
    assert row["oee"] == pytest.approx(1.0)


def test_a_stale_mark_makes_the_time_unknown_until_the_next_sample(make_kpi: MakeKpi) -> None:
    kpi = make_kpi(TWO_SHIFTS, _gap_series(stale=True))
    row = kpi.oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    w = row["waterfall_min"]
    assert w["unknown"] == pytest.approx(10)  # 06:20:00 (the mark) to 06:30:00 (next sample)
    assert w["planned"] == pytest.approx(50)
    assert w["run"] == pytest.approx(50)  # not one unknown minute counted as running
    # the parts between the last count before the mark (599 at 06:19:59) and the first after
    # it (900 at 06:30:00) show up in one step: counted, but not placed in time
    assert row["counts"]["unattributed"] == 301
    assert row["counts"]["good"] == 1800 - 301
    assert row["performance"] == pytest.approx(1.0, abs=0.001)


def test_max_gap_s_limits_how_long_a_sample_holds(make_kpi: MakeKpi) -> None:
    # for history from a cyclic source that left no stale marks
    config = TWO_SHIFTS.replace(
        'reject_count_tag = "" }', 'reject_count_tag = "", max_gap_s = 10 }'
    )
    kpi = make_kpi(config, _gap_series(stale=False))
    row = kpi.oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    w = row["waterfall_min"]
    # the last sample before the gap (06:19:59) holds for 10 s, to 06:20:09; the rest, to
    # 06:30:00, is unknown: 9 min 51 s
    assert w["unknown"] == pytest.approx(10 - 9 / 60)
    assert w["run"] == pytest.approx(w["planned"])
    assert row["counts"]["unattributed"] == 301


def test_parts_counted_in_unknown_time_never_inflate_performance(make_kpi: MakeKpi) -> None:
    # the state is sent once (report by exception) but read with max_gap_s = 10: after 10 s
    # nobody knows the state, while the dense counter goes on counting. Those parts are
    # unattributed; they once made performance 32,118 %.
    config = TWO_SHIFTS.replace(
        'reject_count_tag = "" }', 'reject_count_tag = "", max_gap_s = 10 }'
    )
    ts = np.arange(at(D + "06:00:00"), at(D + "07:00:01"), NS, dtype=np.int64)
    good = ((ts - ts[0]) // NS // 2).astype(float)
    series = {f"{M}/state": (ts[:1], np.array([float(S.RUNNING)])), f"{M}/good_count": (ts, good)}
    row = make_kpi(config, series).oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    assert row["waterfall_min"]["run"] == pytest.approx(10 / 60)
    assert row["performance"] <= 1.0
    assert row["counts"]["good"] + row["counts"]["unattributed"] == 1800
    assert row["counts"]["unattributed"] >= 1790


def test_a_breakdown_into_a_break_is_a_loss_only_until_the_break(make_kpi: MakeKpi) -> None:
    # ISO 22400-2 / oee.com: a break is not planned production time, even while a repair
    # goes on through it. Down 09:50–10:20 across the 10:00–10:30 break.
    config = TWO_SHIFTS.replace(
        '{ name = "early", start = "06:00", end = "14:00" }',
        '{ name = "early", start = "06:00", end = "14:00", breaks = [{ start = "10:00", minutes = 30 }] }',
    )
    pieces = [(D + "09:00:00", S.RUNNING), (D + "09:50:00", S.DOWN), (D + "10:20:00", S.RUNNING)]
    ts, state = steps(D + "09:00:00", pieces, D + "11:00:01")
    running_s = np.cumsum(np.append(0, state[:-1] == S.RUNNING))
    good = (running_s // 2).astype(float)
    kpi = make_kpi(config, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)})
    row = kpi.oee(M, D + "09:00:00Z", D + "11:00:00Z")["rows"][0]
    assert row["losses_min"]["breakdowns"] == pytest.approx(10)
    # 120 min less the 30-min break, plus the 10 minutes it ran after the repair inside the
    # break (production outside the calendar counts, as overtime)
    assert row["waterfall_min"]["planned"] == pytest.approx(100)
    assert row["waterfall_min"]["run"] == pytest.approx(90)


def test_no_data_outside_the_calendar_is_not_planned_so_teep_is_below_oee(
    make_kpi: MakeKpi,
) -> None:
    # the machine sends nothing at night (the PLC is switched off): the calendar plans no
    # production then, so that time is not planned (not unknown) and TEEP < OEE
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", S.RUNNING)], D + "22:00:00")
    good = ((ts - ts[0]) // NS // 2).astype(float)
    q = np.zeros(len(ts), dtype=np.uint8)
    q[-1] = 2  # the PLC's last word at 21:59:59: then it was switched off
    state[-1] = good[-1] = np.nan
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state, q), f"{M}/good_count": (ts, good, q)})
    row = kpi.oee(M, D + "00:00:00Z", "2026-01-06T00:00:00Z")["rows"][0]
    assert row["waterfall_min"]["unknown"] == pytest.approx(1 / 60)  # 21:59:59–22:00:00
    assert row["oee"] == pytest.approx(1.0, abs=1e-3)
    assert row["teep"] == pytest.approx(16 / 24, abs=1e-3)


def test_state_change_exactly_at_the_shift_boundary(make_kpi: MakeKpi) -> None:
    pieces = [(D + "13:00:00", S.RUNNING), (D + "14:00:00", S.DOWN), (D + "14:30:00", S.RUNNING)]
    ts, state = steps(D + "13:00:00", pieces, D + "15:00:01")
    k = (ts - ts[0]) // NS
    running_s = np.cumsum(np.append(0, state[:-1] == S.RUNNING))
    good = (running_s // 2).astype(float)
    del k
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)})
    early, late = kpi.oee(M, D + "13:00:00Z", D + "15:00:00Z", by="shift")["rows"]
    assert (early["period"], late["period"]) == ("2026-01-05 early", "2026-01-05 late")
    assert early["losses_min"]["breakdowns"] == 0  # the breakdown starts with the late shift
    assert early["availability"] == pytest.approx(1.0)
    assert early["counts"]["good"] == 1800  # the part finished at 14:00:00 is the early one's
    assert late["losses_min"]["breakdowns"] == pytest.approx(30)
    assert late["availability"] == pytest.approx(0.5)
    rel = kpi.reliability(M, D + "13:00:00Z", D + "15:00:00Z", by="shift")["rows"]
    assert [r["failures"] for r in rel] == [0, 1]


@pytest.mark.parametrize(
    ("night_of", "hours"),
    [("2026-03-28", 7), ("2026-10-24", 9), ("2026-03-21", 8)],  # spring, autumn, ordinary
)
def test_night_shift_over_daylight_saving_change(night_of: str, hours: int) -> None:
    cal = ShiftCalendar([Shift("night", "22:00", "06:00")], tz="Europe/Berlin")
    a = at(night_of + "T12:00:00")
    periods, labels = periods_of(cal, TimeRange(a, a + 86_400 * NS), "shift")
    assert labels == [f"{night_of} night"]
    assert (periods.end_ns[0] - periods.start_ns[0]) / NS / 3600 == hours


def test_planned_time_over_the_spring_change_is_seven_hours(make_kpi: MakeKpi) -> None:
    config = TWO_SHIFTS.replace(
        'shift = [{ name = "early", start = "06:00", end = "14:00" }, { name = "late", start = "14:00", end = "22:00" }]',
        'timezone = "Europe/Berlin"\nshift = [{ name = "night", start = "22:00", end = "06:00" }]',
    )
    # 2026-03-28 22:00 CET = 21:00Z; 2026-03-29 06:00 CEST = 04:00Z: seven real hours
    pieces = [
        ("2026-03-28T20:00:00", S.IDLE),
        ("2026-03-28T21:00:00", S.RUNNING),
        ("2026-03-29T04:00:00", S.IDLE),
    ]
    ts, state = steps("2026-03-28T20:00:00", pieces, "2026-03-29T06:00:01")
    good = np.cumsum(np.append(0, state[:-1] == S.RUNNING)) // 2
    kpi = make_kpi(config, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good * 1.0)})
    rows = kpi.oee(M, "2026-03-28T20:00:00Z", "2026-03-29T06:00:00Z", by="day")["rows"]
    # local days: the 28th ends at midnight CET = 23:00Z (2 h of the shift), the 29th has
    # the other 5 h
    assert [r["period"] for r in rows] == ["2026-03-28", "2026-03-29"]
    assert [r["waterfall_min"]["planned"] for r in rows] == [pytest.approx(120), pytest.approx(300)]
    assert all(r["oee"] == pytest.approx(1.0) for r in rows)


def test_rules_mode_small_stops_and_debounce() -> None:
    ts = np.arange(0, 1000, dtype=np.int64) * NS
    run = np.ones(1000)
    run[100:160] = 0  # 60 s stop: a small stop (under 300 s)
    run[300:700] = 0  # 400 s stop: a breakdown
    run[800:802] = 0  # 2 s blip: debounced away
    from genba.kpi._timeline import rules_state

    state = rules_state(run, None, 0.0)
    st = track_states(
        ts, state, None, span=(0, 1000 * NS), max_gap_ns=10 * NS,
        debounce_ns=5 * NS, small_stop_ns=300 * NS,
    )  # fmt: skip
    got = [
        (int(s // NS), int(e // NS), S(int(x)).name)
        for s, e, x in zip(st.start_ns, st.end_ns, st.state, strict=True)
    ]
    assert got == [
        (0, 100, "RUNNING"),
        (100, 160, "SMALL_STOP"),
        (160, 300, "RUNNING"),
        (300, 700, "DOWN"),
        (700, 1000, "RUNNING"),
    ]


def test_unknown_state_code_hint_leads_to_a_correct_config(make_kpi: MakeKpi) -> None:
    # running for 5 min, then a code nobody mapped (42) for 5 min
    pieces = [(D + "06:00:00", float(S.RUNNING)), (D + "06:05:00", 42.0)]
    ts, state = steps(D + "06:00:00", pieces, D + "06:10:01")
    series = {f"{M}/state": (ts, state), f"{M}/good_count": (ts, state * 0)}
    answer = make_kpi(TWO_SHIFTS, series).oee(M, D + "06:00:00Z", D + "06:10:00Z")
    (skipped,) = answer["not_counted"]
    assert skipped["machine"] == M
    hint = re.search(r"state_codes = \{.*\}", skipped["reason"])
    assert hint is not None, skipped["reason"]
    # following the hint word for word keeps running as running (a map replaces the defaults)
    fixed = TWO_SHIFTS.replace('reject_count_tag = "" }', f'reject_count_tag = "", {hint[0]} }}')
    row = make_kpi(fixed, series).oee(M, D + "06:00:00Z", D + "06:10:00Z")["rows"][0]
    assert row["availability"] == pytest.approx(0.5)
    assert row["losses_min"]["breakdowns"] == pytest.approx(5)


def test_one_machine_that_cannot_be_counted_does_not_stop_its_line(make_kpi: MakeKpi) -> None:
    config = (
        TWO_SHIFTS
        + """
[[machine]]
path = "s/a/line/n"
ideal_cycle_time_s = 2.0
signals = { state_codes = { "1" = "running" } }
"""
    )
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", 1.0)], D + "06:10:01")
    good = ((ts - ts[0]) // NS // 2).astype(float)
    series = {
        f"{M}/state": (ts, state),
        f"{M}/good_count": (ts, good),
        "s/a/line/n/state": (ts, state * 7),  # a code its map lacks
        "s/a/line/n/good_count": (ts, good),
    }
    answer = make_kpi(config, series).oee("s/a/line", D + "06:00:00Z", D + "06:10:00Z")
    rows = {r["entity"]: r for r in answer["rows"]}
    assert rows[M]["oee"] == pytest.approx(1.0)
    assert rows["s/a/line/n"]["waterfall_min"]["unknown"] == pytest.approx(10)
    assert rows["s/a/line"]["oee"] == pytest.approx(1.0)  # the line from what it could count
    assert [x["machine"] for x in answer["not_counted"]] == ["s/a/line/n"]
    assert "state code 7" in answer["not_counted"][0]["reason"]


def test_optional_signal_tags_are_not_required(make_kpi: MakeKpi) -> None:
    # no reason, product or energy tag on this machine, and the config does not name them
    config = TWO_SHIFTS.replace(
        'signals = { reason_tag = "", product_tag = "", energy_tag = "", reject_count_tag = "" }',
        'signals = { reject_count_tag = "" }',
    )
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", 1.0)], D + "06:10:01")
    good = ((ts - ts[0]) // NS // 2).astype(float)
    kpi = make_kpi(config, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)})
    answer = kpi.oee(M, D + "06:00:00Z", D + "06:10:00Z")
    assert answer["not_counted"] == []
    assert answer["rows"][0]["oee"] == pytest.approx(1.0)
    # named in the config and missing: that is a mistake worth saying
    named = config.replace('reject_count_tag = "" }', 'reject_count_tag = "", energy_tag = "kwh" }')
    answer = make_kpi(named, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)}).oee(
        M, D + "06:00:00Z", D + "06:10:00Z"
    )
    assert "energy_tag of s/a/line/m names 'kwh'" in answer["not_counted"][0]["reason"]


def test_performance_above_100_percent_is_flagged_with_the_fix(make_kpi: MakeKpi) -> None:
    # a part every second, but the ideal cycle is set to 2 s: performance 200 %
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", 1.0)], D + "06:10:01")
    good = ((ts - ts[0]) // NS).astype(float)
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)})
    answer = kpi.oee(M, D + "06:00:00Z", D + "06:10:00Z")
    assert answer["rows"][0]["performance"] == pytest.approx(2.0)
    (w,) = answer["warnings"]
    assert (w["machine"], w["kind"]) == (M, "performance_above_100")
    assert "set ideal_cycle_time_s in its [[machine]] to at most 1 s" in w["message"]


def test_state_codes_map_a_plc_s_own_codes(make_kpi: MakeKpi) -> None:
    config = TWO_SHIFTS.replace(
        'reject_count_tag = "" }',
        'reject_count_tag = "", state_codes = { "0" = "down", "3" = "running" } }',
    )
    ts, state = steps(
        D + "06:00:00", [(D + "06:00:00", 3.0), (D + "06:30:00", 0.0)], D + "07:00:01"
    )
    kpi = make_kpi(config, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, ts * 0.0)})
    row = kpi.oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    assert row["availability"] == pytest.approx(0.5)


def test_missing_signal_tag_and_unknown_asset_name_the_fix(make_kpi: MakeKpi) -> None:
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", 1.0)], D + "06:10:00")
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state)})
    (skipped,) = kpi.oee(M, D + "06:00:00Z", D + "06:10:00Z")["not_counted"]
    assert "good_count_tag of s/a/line/m names 'good_count'" in skipped["reason"]
    with pytest.raises(QueryError, match=r"No machine .* under 's/a/nope'; lines: s/a/line"):
        kpi.oee("s/a/nope", D + "06:00:00Z", D + "06:10:00Z")
    with pytest.raises(QueryError, match="valid values are: shift, day, hour"):
        kpi.oee(M, D + "06:00:00Z", D + "06:10:00Z", by="fortnight")


def test_config_cross_references_are_checked() -> None:
    with pytest.raises(ConfigError, match="names calendar 'nope', which is not defined"):
        parse_config('[[line]]\npath = "s/a/l"\ncalendar = "nope"\n')
    with pytest.raises(ConfigError, match="constraint 'x' is not one of its machines"):
        parse_config('[[line]]\npath = "s/a/l"\nconstraint = "x"\n[[machine]]\npath = "s/a/l/m"\n')
    with pytest.raises(ConfigError, match="unknown state 'broken'"):
        parse_config(
            '[[machine]]\npath = "s/a/l/m"\nsignals = { state_codes = { "1" = "broken" } }\n'
        )
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        parse_config('[[calendar]]\nname = "c"\ntimezone = "Mars/Base"\n')


def test_holidays_and_planned_stops_are_not_planned_time(make_kpi: MakeKpi) -> None:
    config = TWO_SHIFTS.replace(
        'name = "two"\n',
        'name = "two"\nholidays = [2026-01-06]\n'
        'planned_stop = [{ start = 2026-01-05T07:00:00Z, end = 2026-01-05T08:30:00Z, reason = "maintenance" }]\n',
    )
    pieces = [(D + "06:00:00", S.RUNNING)]
    ts, state = steps(D + "06:00:00", pieces, "2026-01-06T14:00:01")
    state = np.where((ts >= at(D + "07:00:00")) & (ts < at(D + "08:30:00")), S.IDLE, state)
    state = np.where(ts >= at(D + "22:00:00"), S.IDLE, state)  # after the late shift, and all
    good = np.cumsum(np.append(0, state[:-1] == S.RUNNING)) // 2  # of the holiday
    kpi = make_kpi(config, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good * 1.0)})
    rows = kpi.oee(M, D + "06:00:00Z", "2026-01-06T14:00:00Z", by="day")["rows"]
    # the 5th: 16 h of shifts − 1.5 h maintenance; the 6th: a holiday, nothing planned
    assert [r["waterfall_min"]["planned"] for r in rows] == [pytest.approx(14.5 * 60), 0]
    assert rows[0]["oee"] == pytest.approx(1.0)
    assert rows[1]["oee"] is None


def test_each_product_is_weighted_by_its_own_ideal_cycle(make_kpi: MakeKpi) -> None:
    config = (
        TWO_SHIFTS.replace('product_tag = "", ', "")
        + """
[[product]]
code = 1
name = "small"
[[product]]
code = 2
name = "large"
cycle_factor = 3.0
"""
    )
    config = config.replace(
        "ideal_cycle_time_s = 2.0\n",
        'ideal_cycle_time_s = 2.0\nideal_cycle_time_s_by_product = { "large" = 5.0 }\n',
    )
    # 06:00–07:00 small parts every 2 s (ideal), 07:00–08:00 large parts every 10 s (ideal 5 s)
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", S.RUNNING)], D + "08:00:01")
    _, product = steps(
        D + "06:00:00", [(D + "06:00:00", 1.0), (D + "07:00:00", 2.0)], D + "08:00:01"
    )
    k = (ts - ts[0]) // NS
    good = np.where(k <= 3600, k // 2, 1800 + (k - 3600) // 10).astype(float)
    kpi = make_kpi(
        config,
        {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good), f"{M}/product": (ts, product)},
    )
    small, large = kpi.oee(M, D + "06:00:00Z", D + "08:00:00Z", by="hour")["rows"]
    assert small["performance"] == pytest.approx(1.0)  # 1800 × 2 s in 3600 s
    assert large["performance"] == pytest.approx(0.5)  # 360 × 5 s in 3600 s
    both = kpi.oee(M, D + "06:00:00Z", D + "08:00:00Z")["rows"][0]
    assert both["performance"] == pytest.approx(0.75)  # (3600 + 1800) / 7200, not by counts


def test_a_reason_code_set_after_the_stop_began_names_that_stop(make_kpi: MakeKpi) -> None:
    config = TWO_SHIFTS.replace('reason_tag = "", ', "")
    pieces = [(D + "06:00:00", S.RUNNING), (D + "06:10:00", S.DOWN), (D + "06:30:00", S.RUNNING)]
    ts, state = steps(D + "06:00:00", pieces, D + "07:00:01")
    # the PLC sets the reason two seconds into the stop, and clears it when it runs again
    _, reason = steps(
        D + "06:00:00",
        [(D + "06:00:00", 0.0), (D + "06:10:02", 32.0), (D + "06:30:00", 0.0)],
        D + "07:00:01",
    )
    kpi = make_kpi(
        config,
        {f"{M}/state": (ts, state), f"{M}/reason": (ts, reason), f"{M}/good_count": (ts, ts * 0.0)},
    )
    stops = kpi.downtime(M, D + "06:00:00Z", D + "07:00:00Z", "down")
    assert [(s["reason"], round(s["minutes"] * 60)) for s in stops] == [
        ("unassigned", 2),
        ("electrical", 1198),
    ]
    rel = kpi.reliability(M, D + "06:00:00Z", D + "07:00:00Z")
    assert rel["rows"][0]["failures"] == 1  # one stop, whatever its reason did
    assert rel["failures_by_reason"] == {
        "electrical": {"failures": 1, "minutes": pytest.approx(20)}
    }


def test_a_counter_jump_is_not_parts(make_kpi: MakeKpi) -> None:
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", S.RUNNING)], D + "07:00:01")
    good = ((ts - ts[0]) // NS // 2).astype(float)
    # at 06:30 a replaced PLC starts its counter at 50,000: 1 s can hold 1 part, not 48,200
    good = np.where(ts >= at(D + "06:30:00"), good + 50_000 - 900, good)
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, good)})
    row = kpi.oee(M, D + "06:00:00Z", D + "07:00:00Z")["rows"][0]
    assert row["counts"]["unattributed"] == 50_000 - 899  # 899 at 06:29:59, 50,000 at 06:30
    assert row["counts"]["good"] == 1800 - 1  # every real part but the one inside the jump
    assert row["performance"] == pytest.approx(1.0, abs=0.002)


def test_labour_is_paid_only_for_scheduled_time_with_data(make_kpi: MakeKpi) -> None:
    config = TWO_SHIFTS + "\n[costs]\nlabour_rate_per_h = 60.0\n"
    config = config.replace('calendar = "two"\n', 'calendar = "two"\noperators = 2\n')
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", S.RUNNING)], D + "07:00:01")
    keep = ts >= at(D + "06:30:00")  # the node started at 06:30
    good = ((ts - ts[0]) // NS // 2).astype(float)
    kpi = make_kpi(
        config, {f"{M}/state": (ts[keep], state[keep]), f"{M}/good_count": (ts[keep], good[keep])}
    )
    (row,) = kpi.cost("s/a/line", D + "06:00:00Z", D + "07:00:00Z")["rows"]
    # 30 scheduled minutes with data × 2 operators × 60 per hour = 60
    assert row["costs"]["labour"] == pytest.approx(60.0)


def test_a_relative_start_counts_from_now_as_on_every_endpoint(make_kpi: MakeKpi) -> None:
    # once -8h counted back from `end` here and from now on /api/tags/*/samples
    ts, state = steps(D + "06:00:00", [(D + "06:00:00", 1.0)], D + "06:10:01")
    kpi = make_kpi(TWO_SHIFTS, {f"{M}/state": (ts, state), f"{M}/good_count": (ts, state * 0)})
    span = kpi.typed.span("-8h", "-2h")
    now = kpi.typed.clock.now_ns()
    assert abs(span.start_ns - (now - 8 * 3600 * NS)) < 5 * NS
    assert abs(span.end_ns - (now - 2 * 3600 * NS)) < 5 * NS
    assert kpi.typed.span("-8h", None).end_ns - kpi.typed.span(
        "-8h", None
    ).start_ns == pytest.approx(8 * 3600 * NS, abs=5 * NS)

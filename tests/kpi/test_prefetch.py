"""KPIs read every signal of a fleet in one read of the store (``SignalReader.prefetch``): the
answers are those of reading tag by tag, whatever the data holds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from genba.kpi._load import SignalReader
from tests.kpi.conftest import NS, MakeKpi, at

CONFIG = """
[[calendar]]
name = "two"
shift = [{ name = "early", start = "06:00", end = "14:00", breaks = [{ start = "10:00", minutes = 30 }] },
         { name = "late", start = "14:00", end = "22:00" }]

[[product]]
code = 1
name = "small"
[[product]]
code = 2
name = "large"
cycle_factor = 1.5

[[line]]
path = "s/a/l1"
calendar = "two"
[[line]]
path = "s/a/l2"
calendar = "two"

[[machine]]
path = "s/a/l1/m0"
ideal_cycle_time_s = 1.0
[[machine]]
path = "s/a/l1/m1"
ideal_cycle_time_s = 1.0
[[machine]]
path = "s/a/l2/m0"
ideal_cycle_time_s = 1.0
signals = { energy_tag = "", max_gap_s = 120 }
[[machine]]
path = "s/a/l2/m1"
ideal_cycle_time_s = 1.0
"""
START = at("2026-01-05T05:00:00")
END = at("2026-01-05T23:00:00")


def _machine(rng: np.random.Generator, skip: set[str]) -> dict[str, tuple[np.ndarray, ...]]:
    """A day of one machine sent by exception: states and reasons on change (some before the
    span, a stale mark now and then), counters every 30 s while they change."""
    n = 300
    dur = rng.exponential(240.0, n) + 1
    start = START + (np.cumsum(dur) * NS).astype(np.int64) - 3600 * NS
    # genba's default codes: 1 running, 2 idle, 3 starved, 6 setup, 7 down, 8 small stop
    state = rng.choice([2, 3, 6, 7, 8], n, p=[0.1, 0.2, 0.1, 0.2, 0.4]).astype(float)
    state[0::2] = 1  # running in between
    quality = np.where(rng.random(n) < 0.03, 2, 0).astype(np.int16)  # stale marks
    grid = np.arange(START - 1800 * NS, END + 1800 * NS, 30 * NS, dtype=np.int64)
    running = state[np.clip(np.searchsorted(start, grid, "right") - 1, 0, n - 1)] == 1
    good = np.cumsum(running * rng.integers(20, 31, len(grid))).astype(float)
    reject = np.cumsum(running * rng.integers(0, 2, len(grid))).astype(float)
    good[len(grid) // 2 :] -= good[len(grid) // 2]  # a counter reset
    energy = np.round(np.cumsum(rng.uniform(0.01, 0.06, len(grid))), 3)
    out: dict[str, tuple[np.ndarray, ...]] = {
        "state": (start, state, quality),
        "reason": (start, np.where(state == 7, rng.integers(1, 4, n), 0).astype(float)),
        "product": (start[::40], 1.0 + np.arange(len(start[::40])) % 2),
        "good_count": _on_change(grid, good),
        "reject_count": _on_change(grid, reject),
        "energy": _on_change(grid, energy),
    }
    return {k: v for k, v in out.items() if k not in skip}


def _on_change(ts: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.r_[True, v[1:] != v[:-1]]
    return ts[keep], v[keep]


@pytest.mark.parametrize("store_kind", ["duckdb", "postgres"])
def test_prefetched_answers_are_those_of_reading_tag_by_tag(make_kpi: MakeKpi) -> None:
    rng = np.random.default_rng(11)
    series: dict[str, tuple[np.ndarray, ...]] = {}
    skips = [set(), {"energy"}, set(), {"good_count"}]  # l2/m1 lacks a counter: not counted
    for path, skip in zip(["s/a/l1/m0", "s/a/l1/m1", "s/a/l2/m0", "s/a/l2/m1"], skips, strict=True):
        series |= {f"{path}/{k}": v for k, v in _machine(rng, skip).items()}
    kpi = make_kpi(CONFIG, series)
    span = ("2026-01-05T06:00:00Z", "2026-01-05T22:00:00Z")
    fetched = _answers(kpi, span)
    plain = kpi.typed.reader
    prefetch_calls = []

    def no_prefetch(*args: Any, **kw: Any) -> SignalReader:
        prefetch_calls.append(args)
        return plain

    kpi.typed.reader.prefetch = no_prefetch  # type: ignore[method-assign]
    assert _answers(kpi, span) == fetched
    assert prefetch_calls  # the comparison went through the unprefetched reader
    oee = fetched[0]
    assert [x["machine"] for x in oee["not_counted"]] == ["s/a/l2/m1"]
    rows = {(r["entity"], r["period"]): r for r in oee["rows"]}
    assert len(rows) == 2 * (4 + 2 + 1)  # two shifts of four machines, two lines, the area
    assert all(r["counts"]["good"] > 0 for (e, _), r in rows.items() if e != "s/a/l2/m1")


def _answers(kpi: Any, span: tuple[str, str]) -> list[Any]:
    return [
        kpi.oee("s/a", *span, by="shift"),
        kpi.losses("s/a", *span),
        kpi.reliability("s/a", *span),
        kpi.cost("s/a", *span),
        kpi.downtime("s/a", *span),
    ]


def test_slot_of_is_searchsorted_for_events_by_machine_then_time() -> None:
    from genba.kpi._oee import slot_of

    rng = np.random.default_rng(5)
    cuts = np.sort(rng.choice(10_000, 40, replace=False)).astype(np.int64)
    machine = np.repeat(np.arange(5, dtype=np.int32), 2_000)
    ts = np.concatenate([np.sort(rng.integers(-100, 10_100, 2_000)) for _ in range(5)])
    ts[:3] = cuts[:3]  # events exactly at a cut
    want = np.searchsorted(cuts, ts, "right")
    assert slot_of(machine, ts, cuts).tolist() == want.tolist()  # cut machine by machine
    shuffled = rng.permutation(len(ts))
    assert slot_of(machine, ts[shuffled], cuts).tolist() == want[shuffled].tolist()

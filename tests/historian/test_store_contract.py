"""The contract every historian backend fulfils, run against each registered kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from genba import plugins
from genba.errors import QueryError
from genba.historian import (
    Record,
    Rollups,
    Store,
    StoreSettings,
    Streaming,
    TimeRange,
    export_tables,
    open_store,
)
from genba.historian._derived import resample, time_weighted, value_at
from genba.historian.duckdb import DuckDBStore
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch, Tag, TagSpec

KINDS = sorted(plugins.available(plugins.STORES))  # every registered backend
SEGMENTED = "duckdb+segments"
"""DuckDB with every append moved at once into segments sorted by tag (and merged when a level
is full): the same contract whatever part of the history is laid out by tag."""
MIN = 60 * NS_PER_S
SERVER_OPTIONS = {"postgres": lambda request: {"dsn": request.getfixturevalue("postgres_dsn")}}
"""Backends that need a server: the options of a fresh database of it (a private PostgreSQL
for postgres). A backend not named here runs with its defaults under the test's temp dir."""


class _Segmented(DuckDBStore):
    def append(self, batch: SampleBatch) -> None:
        super().append(batch)
        self.compact(everything=True)


@pytest.fixture(params=[*KINDS, SEGMENTED])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(kind: str, request: pytest.FixtureRequest) -> StoreSettings:
    """This kind's settings, on a fresh database."""
    options = SERVER_OPTIONS[kind](request) if kind in SERVER_OPTIONS else {}
    return StoreSettings(kind="duckdb" if kind == SEGMENTED else kind, **options)


@pytest.fixture
def store(kind: str, settings: StoreSettings, tmp_path: Path) -> Iterator[Store]:
    if kind == SEGMENTED:
        s: Store = _Segmented(tmp_path / "historian.duckdb", compact_rows=1_000)
    else:
        s = open_store(settings, data_dir=tmp_path)
    yield s
    s.close()


def _reopen(
    store: Store, settings: StoreSettings, tmp_path: Path, read_only: bool = False
) -> Store:
    store.close()
    return open_store(settings, data_dir=tmp_path, read_only=read_only)


# Tag 1: one sample every 20 s for 3 minutes: values 0..8. Tag 2: a BAD sample in minute 0.
TS = np.arange(9, dtype=np.int64) * 20 * NS_PER_S
FIXTURE = SampleBatch.concat(
    [
        SampleBatch.from_columns(tag_ids=[1] * 9, ts_ns=TS, values=np.arange(9.0)),
        SampleBatch.from_columns(
            tag_ids=[2, 2], ts_ns=[0, 30 * NS_PER_S], values=[100.0, 5.0], quality=[2, 0]
        ),
    ]
)


def test_raw_returns_the_range_in_time_order(store: Store) -> None:
    store.append(FIXTURE)
    got = store.raw([1, 2], TimeRange(20 * NS_PER_S, 60 * NS_PER_S))
    assert got.ts_ns.tolist() == [20 * NS_PER_S, 30 * NS_PER_S, 40 * NS_PER_S]
    assert got.tag_ids.tolist() == [1, 2, 1]
    assert got.values.tolist() == [1.0, 5.0, 2.0]


def test_raw_by_tag_returns_each_tag_s_series_in_turn(store: Store) -> None:
    rng = np.random.default_rng(3)
    ts = np.sort(rng.choice(10 * MIN, 400, replace=False)).astype(np.int64)
    tags = rng.integers(1, 6, 400).astype(np.int32)
    quality = np.where(rng.random(400) < 0.1, 2, 0).astype(np.int16)
    batch = SampleBatch.from_columns(tag_ids=tags, ts_ns=ts, values=ts / 1e9, quality=quality)
    for half in (batch.select(slice(200, None)), batch.select(slice(None, 200))):
        store.append(half)  # the later half first: arrival order is not time order
    got = store.raw_by_tag([2, 4, 5, 9], TimeRange(MIN, 9 * MIN))
    want = store.raw([2, 4, 5, 9], TimeRange(MIN, 9 * MIN))
    order = np.lexsort((want.ts_ns, want.tag_ids))
    assert got.tag_ids.tolist() == want.tag_ids[order].tolist()
    assert got.ts_ns.tolist() == want.ts_ns[order].tolist()
    assert got.values.tolist() == want.values[order].tolist()
    assert got.quality.tolist() == want.quality[order].tolist()
    assert set(got.tag_ids.tolist()) == {2, 4, 5}
    assert len(got) > 100


def test_runs_keep_what_step_samples_say(store: Store) -> None:
    # one tag at 1 s: 1 1 1 | 2 2 | (gap of 30 s) 2 2 | 3(BAD: a stale mark, NaN) NaN NaN | 1
    ts = [0, 1, 2, 3, 4, 34, 35, 36, 37, 38, 39]
    values = [1, 1, 1, 2, 2, 2, 2, 3, float("nan"), float("nan"), 1]
    quality = [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]
    store.append(
        SampleBatch.from_columns(
            tag_ids=np.full(len(ts), 7, dtype=np.int32),
            ts_ns=np.array(ts, dtype=np.int64) * NS_PER_S,
            values=np.array(values),
            quality=np.array(quality, dtype=np.uint8),
        )
    )
    r = store.runs(7, TimeRange(0, 100 * NS_PER_S), max_gap_ns=10 * NS_PER_S)
    assert (r.start_ns // NS_PER_S).tolist() == [0, 3, 34, 36, 39]
    assert (r.last_ns // NS_PER_S).tolist() == [2, 4, 35, 38, 39]
    assert r.values[:3].tolist() == [1, 2, 2]
    assert np.isnan(r.values[3])
    assert r.values[4] == 1
    inside = store.runs(7, TimeRange(1 * NS_PER_S, 4 * NS_PER_S), max_gap_ns=10 * NS_PER_S)
    assert (inside.start_ns // NS_PER_S).tolist() == [1, 3]
    assert len(store.runs(8, TimeRange(0, 100 * NS_PER_S), max_gap_ns=NS_PER_S)) == 0


def test_raw_limit(store: Store) -> None:
    store.append(FIXTURE)
    assert len(store.raw([1], TimeRange(0, 10 * MIN), limit=4)) == 4


def test_bucket_aggregates_match_hand_computation(store: Store) -> None:
    store.append(FIXTURE)
    b = store.aggregate(
        [1],
        TimeRange(0, 3 * MIN),
        every_ns=MIN,
        aggs=["avg", "min", "max", "count", "first", "last"],
    )
    # minute 0 holds values 0,1,2; minute 1 holds 3,4,5; minute 2 holds 6,7,8
    assert b.bucket_ns.tolist() == [0, MIN, 2 * MIN]
    assert b.columns["avg"].tolist() == [1.0, 4.0, 7.0]
    assert b.columns["min"].tolist() == [0.0, 3.0, 6.0]
    assert b.columns["max"].tolist() == [2.0, 5.0, 8.0]
    assert b.columns["count"].tolist() == [3.0, 3.0, 3.0]
    assert b.columns["first"].tolist() == [0.0, 3.0, 6.0]
    assert b.columns["last"].tolist() == [2.0, 5.0, 8.0]


def test_aggregates_leave_out_bad_quality(store: Store) -> None:
    store.append(FIXTURE)
    b = store.aggregate([2], TimeRange(0, MIN), every_ns=MIN, aggs=["avg", "count"])
    assert b.columns["avg"].tolist() == [5.0]
    assert b.columns["count"].tolist() == [1.0]


def test_unknown_aggregate_names_the_valid_ones(store: Store) -> None:
    with pytest.raises(QueryError, match="valid values are: avg, min, max"):
        store.aggregate([1], TimeRange(0, MIN), every_ns=MIN, aggs=["median"])


def test_last_is_the_newest_by_time_not_by_arrival(store: Store) -> None:
    store.append(FIXTURE)
    store.append(SampleBatch.from_columns(tag_ids=[1], ts_ns=[0], values=[-1.0]))  # late, old
    last = store.last([1, 2, 99])
    assert last.tag_ids.tolist() == [1, 2]
    assert last.values.tolist() == [8.0, 5.0]
    assert store.last().tag_ids.tolist() == [1, 2]


def test_last_after_a_reopen_is_the_newest_by_time(
    store: Store, settings: StoreSettings, tmp_path: Path
) -> None:
    store.append(FIXTURE)
    store.append(SampleBatch.from_columns(tag_ids=[1], ts_ns=[0], values=[-1.0]))  # late, old
    store.append(SampleBatch.from_columns(tag_ids=[3], ts_ns=[5], values=[3.0]))
    again = _reopen(store, settings, tmp_path)
    try:
        last = again.last()
        assert last.tag_ids.tolist() == [1, 2, 3]
        assert last.values.tolist() == [8.0, 5.0, 3.0]
        assert last.ts_ns.tolist() == [160 * NS_PER_S, 30 * NS_PER_S, 5]
    finally:
        again.close()


def test_everything_survives_a_reopen(
    store: Store, settings: StoreSettings, tmp_path: Path
) -> None:
    store.append(FIXTURE)
    store.save_tags(
        [Tag(1, TagSpec("s/a/l/m/x", "degC", "x", 0.0, 10.0)), Tag(2, TagSpec("s/a/l/m/y"))]
    )
    store.save_tags([Tag(2, TagSpec("s/a/l/m/y", unit="A"))])  # update in place
    again = _reopen(store, settings, tmp_path)
    try:
        assert again.count() == len(FIXTURE)
        assert [t.spec for t in again.load_tags()] == [
            TagSpec("s/a/l/m/x", "degC", "x", 0.0, 10.0),
            TagSpec("s/a/l/m/y", "A"),
        ]
        assert again.last([1]).values.tolist() == [8.0]
    finally:
        again.close()


def test_sum_aggregate(store: Store) -> None:
    store.append(FIXTURE)
    b = store.aggregate([1], TimeRange(0, 3 * MIN), every_ns=MIN, aggs=["sum"])
    assert b.columns["sum"].tolist() == [3.0, 12.0, 21.0]  # 0+1+2, 3+4+5, 6+7+8


def test_raw_pages_with_a_cursor_give_every_row_once(store: Store) -> None:
    store.append(FIXTURE)
    whole = store.raw([1, 2], TimeRange(0, 10 * MIN))
    rows: list[tuple[int, int, float]] = []
    after = None
    while True:
        page = store.raw([1, 2], TimeRange(0, 10 * MIN), limit=4, after=after)
        if not len(page):
            break
        rows += zip(page.ts_ns.tolist(), page.tag_ids.tolist(), page.values.tolist(), strict=True)
        after = (int(page.ts_ns[-1]), int(page.tag_ids[-1]))
    assert rows == list(
        zip(whole.ts_ns.tolist(), whole.tag_ids.tolist(), whole.values.tolist(), strict=True)
    )
    assert len(rows) == 11


S = NS_PER_S
# Tag 3, an irregular signal: 10 from -30 s (before the range), 20 from 20 s, a BAD 40 at 50 s
# (ignored: the 20 holds), 0 from 80 s.
IRREGULAR = SampleBatch.from_columns(
    tag_ids=[3, 3, 3, 3],
    ts_ns=[-30 * S, 20 * S, 50 * S, 80 * S],
    values=[10.0, 20.0, 40.0, 0.0],
    quality=[0, 0, 2, 0],
)


def test_time_weighted_average_by_hand(store: Store) -> None:
    store.append(IRREGULAR)
    b = time_weighted(store, [3], TimeRange(0, 2 * MIN), MIN)
    # minute 0: 10 for 20 s, 20 for 40 s -> (200 + 800) / 60; minute 1: 20 for 20 s, 0 for 40 s
    assert b.bucket_ns.tolist() == [0, MIN]
    assert b.columns["twa"].tolist() == pytest.approx([1000 / 60, 400 / 60])
    plain = store.aggregate([3], TimeRange(0, 2 * MIN), every_ns=MIN, aggs=["avg"])
    assert plain.columns["avg"].tolist() == [20.0, 0.0]  # what a plain average says instead


def test_resample_step_and_linear_by_hand(store: Store) -> None:
    store.append(IRREGULAR)
    grid, step = resample(store, 3, TimeRange(0, 2 * MIN), 30 * S, "step")
    assert grid.tolist() == [0, 30 * S, 60 * S, 90 * S]
    assert step.tolist() == [10.0, 20.0, 20.0, 0.0]
    _, lin = resample(store, 3, TimeRange(0, 2 * MIN), 30 * S, "linear")
    # lines through (-30, 10), (20, 20), (80, 0); nothing known after 80 s
    assert lin[:3].tolist() == pytest.approx([16.0, 20 - 20 / 6, 20 - 40 / 3])
    assert np.isnan(lin[3])


def test_value_at_a_time_looks_back_as_far_as_needed(store: Store) -> None:
    store.append(IRREGULAR)
    long_ago = 40 * 24 * 3600 * S
    store.append(SampleBatch.from_columns(tag_ids=[4], ts_ns=[-long_ago], values=[7.5]))
    got = value_at(store, [3, 4, 99], 50 * S)
    assert got.tag_ids.tolist() == [3, 4]
    assert got.values.tolist() == [20.0, 7.5]  # the BAD 40 at 50 s does not count
    assert got.ts_ns.tolist() == [20 * S, -long_ago]
    assert len(value_at(store, [3], -31 * S)) == 0  # before the first sample: unknown


def test_delete_before_removes_only_old_samples_of_the_given_tags(store: Store) -> None:
    store.append(FIXTURE)
    assert store.delete_before([1], 60 * NS_PER_S) == 3  # tag 1 at 0, 20, 40 s
    assert store.raw([1], TimeRange(0, 10 * MIN)).ts_ns.tolist() == TS[3:].tolist()
    assert len(store.raw([2], TimeRange(0, 10 * MIN))) == 2  # another tag: untouched
    assert store.delete_before([], 10**18) == 0


def test_rollups_are_kept_replaced_read_and_aged_per_tier(store: Store) -> None:
    # An optional capability (Rollups); both registered backends have it.
    assert isinstance(store, Rollups), f"{type(store).__name__} keeps no downsampling tiers"
    store.append(FIXTURE)
    store.roll_up(MIN, [1, 2], TimeRange(0, 3 * MIN))
    store.roll_up(MIN, [1, 2], TimeRange(0, 3 * MIN))  # again: replaced, not doubled
    back = store.read_rollup(MIN, [1], TimeRange(0, 3 * MIN))
    assert back.bucket_ns.tolist() == [0, MIN, 2 * MIN]
    assert back.columns["sum"].tolist() == [3.0, 12.0, 21.0]
    assert back.columns["first"].tolist() == [0.0, 3.0, 6.0]
    assert len(store.read_rollup(60 * MIN, [1], TimeRange(0, 3 * MIN))) == 0  # another tier
    assert store.rollup_end(MIN, [1, 2]) == 2 * MIN
    assert store.rollup_end(60 * MIN, [1, 2]) is None
    assert store.rollup_end(MIN, [99]) is None
    assert store.delete_rollup_before(MIN, [1], MIN) == 1
    assert store.read_rollup(MIN, [1, 2], TimeRange(0, 3 * MIN)).tag_ids.tolist() == [1, 1, 2]


def test_the_record_log_appends_in_order_and_answers_by_kind_key_time_and_seq(
    store: Store, settings: StoreSettings, tmp_path: Path
) -> None:
    body = {"state": "unack", "value": 81.5, "nested": {"list": [1, 2]}, "text": "Grüße ✓"}
    first = store.append_records(
        [
            Record("alarm.event", 10, "press:high", body),
            Record("alarm.event", 20, "oven:low", {"state": "active"}),
            Record("deadletter", 15, "mqtt-0", {"reason": "not JSON"}),
        ]
    )
    assert first == sorted(first)
    assert len(set(first)) == 3
    more = store.append_records([Record("alarm.event", 5, "press:high", {"state": "acked"})])
    assert more[0] > first[-1]  # later appends get higher numbers, whatever their time
    assert store.append_records([]) == []
    events = store.records("alarm.event")
    assert [(r.ts_ns, r.key) for r in events] == [
        (10, "press:high"),
        (20, "oven:low"),
        (5, "press:high"),
    ]
    assert events[0].body == body
    assert [r.seq for r in events] == [first[0], first[1], more[0]]
    assert [r.ts_ns for r in store.records("alarm.event", key="press:high")] == [10, 5]
    assert [r.ts_ns for r in store.records("alarm.event", span=TimeRange(5, 11))] == [10, 5]
    assert [r.seq for r in store.records("alarm.event", after_seq=first[0])] == [first[1], more[0]]
    assert [r.ts_ns for r in store.records("alarm.event", limit=2, newest_first=True)] == [5, 20]
    assert store.records("nothing.here") == []
    store = _reopen(store, settings, tmp_path, read_only=True)
    assert [r.key for r in store.records("deadletter")] == ["mqtt-0"]
    store.close()


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (Record("Alarm Event", 0, "", {}), "record kind 'Alarm Event': use 1-64 lowercase"),
        (Record("x", 0, "", {"v": float("nan")}), "body is not JSON"),
        (Record("x", 0, "", {"v": object()}), "body is not JSON"),
        (Record("x", 2**63, "", {}), "is not an int64"),
    ],
)
def test_a_bad_record_is_refused_and_nothing_of_its_batch_is_kept(
    store: Store, record: Record, error: str
) -> None:
    with pytest.raises(QueryError, match=error):
        store.append_records([Record("x", 1, "", {"ok": True}), record])
    assert store.records("x") == []


def test_an_export_reads_every_sample_once_in_time_order(store: Store) -> None:
    """export_tables: one sorted pass where the store streams (DuckDB, PostgreSQL), pages of
    raw where it does not; either way what raw gives, in pages of at most the size asked."""
    store.append(FIXTURE)
    store.append(SampleBatch.from_columns(tag_ids=[2], ts_ns=[10 * NS_PER_S], values=[7.0]))
    registry = TagRegistry([Tag(1, TagSpec("s/a/l/m/x")), Tag(2, TagSpec("s/a/l/m/y"))])
    tables = list(export_tables(store, registry, "#", TimeRange(0, 10 * MIN), page=4))
    got = pa.concat_tables(tables)
    want = store.raw([1, 2], TimeRange(0, 10 * MIN))
    assert got["value"].to_pylist() == want.values.tolist()
    assert got["tag"].to_pylist() == registry.paths_of(want.tag_ids.tolist())
    assert all(t.num_rows <= 4 for t in tables)
    assert isinstance(store, Streaming) or [t.num_rows for t in tables] == [4, 4, 4]


def test_a_long_export_is_every_sample_once_by_time_and_tag(store: Store) -> None:
    """200,000 samples exported in pages of 7,777 rows (a stream where the store has one:
    block and network chunk boundaries then fall inside PostgreSQL's COPY rows; pages of raw
    where it has not): nothing is lost, doubled or reordered."""
    n = 100_000
    ts = np.arange(n, dtype=np.int64) * NS_PER_S
    store.append(
        SampleBatch.from_columns(
            tag_ids=np.r_[np.ones(n, np.int32), np.full(n, 2, np.int32)],
            ts_ns=np.r_[ts, ts],
            values=np.r_[np.arange(n, dtype=np.float64), -np.arange(n, dtype=np.float64)],
        )
    )
    registry = TagRegistry([Tag(1, TagSpec("s/a/l/m/x")), Tag(2, TagSpec("s/a/l/m/y"))])
    tables = list(export_tables(store, registry, "#", TimeRange(0, n * NS_PER_S), page=7_777))
    assert max(t.num_rows for t in tables) <= 7_777
    got = pa.concat_tables(tables)
    assert got.num_rows == 2 * n
    assert got["timestamp"].cast(pa.int64()).to_pylist() == np.repeat(ts, 2).tolist()
    assert got["tag"].to_pylist() == ["s/a/l/m/x", "s/a/l/m/y"] * n
    assert got["value"].to_pylist()[::2] == np.arange(n, dtype=np.float64).tolist()

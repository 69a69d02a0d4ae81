"""[[retention]]: raw samples older than their rule allows are deleted; the rest is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba.clock import ManualClock
from genba.config import GenbaConfig, RetentionSettings, TierSettings
from genba.errors import ConfigError, QueryError
from genba.historian import BucketHistory, Retention, Rollups, Store, TimeRange
from genba.historian.duckdb import DuckDBStore
from genba.node import Node
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch, TagSpec
from tests.conftest import wait_until

DAY = 86_400 * NS_PER_S
CONFIG = """
[clock]
kind = "simulated"
start = 2026-03-01T00:00:00Z

[[retention]]
tags = "plant/fast/#"
raw_days = 2

[[retention]]
tags = "plant/#"
raw_days = 10
"""


def test_first_matching_rule_applies_and_unmatched_tags_stay(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    node = Node(make_config(CONFIG))
    try:
        now = node.clock.now_ns()
        fast, slow, other = (
            t.id
            for t in node.registry.ensure(
                [TagSpec("plant/fast/a/b/v"), TagSpec("plant/slow/a/b/v"), TagSpec("x/y")]
            )
        )
        ages = [0, 1, 3, 5, 11, 20]  # days ago
        for tag in (fast, slow, other):
            node.store.append(
                SampleBatch.from_columns(
                    tag_ids=[tag] * len(ages), ts_ns=[now - d * DAY for d in ages], values=ages
                )
            )
        assert node.component(Retention).apply() == 4 + 2  # fast: 3, 5, 11, 20 days; slow: 11, 20

        def kept(tag: int) -> list[float]:
            got: list[float] = node.store.raw([tag], TimeRange(0, now + 1)).values.tolist()
            return got

        assert sorted(kept(fast)) == [0.0, 1.0]
        assert sorted(kept(slow)) == [0.0, 1.0, 3.0, 5.0]
        assert sorted(kept(other)) == [0.0, 1.0, 3.0, 5.0, 11.0, 20.0]  # no rule: forever
        assert node.component(Retention).apply() == 0
        assert node.health()["retention"]["deleted"] == 6
    finally:
        node.store.close()


def test_a_bad_rule_names_the_fix(make_config: Callable[[str], GenbaConfig]) -> None:
    with pytest.raises(ConfigError, match="raw_days"):
        make_config('[[retention]]\ntags = "#"\n')
    with pytest.raises(ConfigError, match="'#' may only stand alone"):
        make_config('[[retention]]\ntags = "a/#/b"\nraw_days = 1\n')


async def test_a_running_node_sweeps_at_start(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    config = make_config(CONFIG)
    first = Node(config)
    now = first.clock.now_ns()
    (tag,) = first.registry.ensure([TagSpec("plant/fast/a/b/v")])
    first.store.save_tags([tag])
    first.store.append(
        SampleBatch.from_columns(tag_ids=[tag.id] * 2, ts_ns=[now - 3 * DAY, now], values=[1, 2])
    )
    first.store.close()
    rn = await run_node(config)
    await wait_until(lambda: rn.node.component(Retention).deleted == 1)
    assert rn.node.store.raw([tag.id], TimeRange(0, now + 1)).values.tolist() == [2.0]


TIERS = """
[clock]
kind = "simulated"
start = 2026-03-01T00:00:00Z

[[retention]]
tags = "plant/#"
raw_days = 10
tiers = [{ every = "1h", keep_days = 100 }, { every = "1d" }]
"""


def test_tiers_keep_aggregates_after_raw_samples_age_out_and_queries_use_them(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    node = Node(make_config(TIERS))
    try:
        now = node.clock.now_ns()
        (tag,) = node.registry.ensure([TagSpec("plant/a/b/c/v")])
        k = np.arange(40 * 144)  # every 10 minutes for 40 days, ending now
        ts = now - 40 * DAY + k * 600 * NS_PER_S
        rng = np.random.default_rng(3)
        node.store.append(
            SampleBatch.from_columns(
                tag_ids=[tag.id] * len(k), ts_ns=ts, values=rng.normal(5, 2, len(k))
            )
        )
        aggs = ["avg", "min", "max", "count", "sum", "first", "last"]
        end = now - now % DAY  # whole days, all closed
        start = end - 41 * DAY
        truth = {
            every: node.store.aggregate([tag.id], TimeRange(start, end), every_ns=n, aggs=aggs)
            for every, n in (("1d", DAY), ("2h", 2 * 3600 * NS_PER_S))
        }
        node.component(Retention).apply()
        assert node.store.raw([tag.id], TimeRange(0, now - 10 * DAY)).ts_ns.size == 0
        for every, want in truth.items():
            got = node.history.samples(
                "plant/a/b/c/v", start=str(start // 10**6), end=str(end // 10**6),
                every=every, agg=",".join(aggs),
            )  # fmt: skip
            assert isinstance(got, BucketHistory)
            assert got.tier_ns == 3600 * 10**9  # the finest tier dividing it
            assert got.bucket_ns.tolist() == want.bucket_ns.tolist()
            for a in aggs:
                assert got.columns[a].tolist() == pytest.approx(
                    want.columns[a].tolist(), rel=1e-12
                ), (every, a)
        recent = node.history.samples("plant/a/b/c/v", start="-5d", every="1h", agg="avg")
        assert isinstance(recent, BucketHistory)
        assert recent.tier_ns is None  # within raw_days: raw samples
        with pytest.raises(QueryError, match="no tier"):
            node.history.samples("plant/a/b/c/v", start="-30d", every="30m", agg="avg")
        with pytest.raises(QueryError, match="twa needs raw samples"):
            node.history.samples("plant/a/b/c/v", start="-30d", every="1d", agg="twa")
        node.component(Retention).apply()  # again: buckets replaced, nothing doubled
        again = node.history.samples(
            "plant/a/b/c/v", start=str(start // 10**6), end=str(end // 10**6), every="1d",
            agg="count",
        )  # fmt: skip
        assert isinstance(again, BucketHistory)
        assert again.columns["count"].tolist() == truth["1d"].columns["count"].tolist()
    finally:
        node.store.close()


class _NoTiers:
    """A store kind that keeps no downsampling tiers (Rollups is optional)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        if name in ("roll_up", "read_rollup", "rollup_end", "delete_rollup_before"):
            raise AttributeError(name)
        return getattr(self._store, name)


def test_tiers_on_a_store_without_rollups_are_refused_naming_the_fix(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb")
    plain = _NoTiers(store)
    assert isinstance(store, Rollups)
    assert not isinstance(plain, Rollups)
    rules = [RetentionSettings(tags="#", raw_days=7, tiers=[TierSettings(every="1h")])]
    try:
        with pytest.raises(ConfigError, match=r"keeps no downsampling tiers .* remove the tiers"):
            Retention(rules, plain, TagRegistry(), ManualClock())  # type: ignore[arg-type]
        no_tiers = [RetentionSettings(tags="#", raw_days=7)]
        Retention(no_tiers, plain, TagRegistry(), ManualClock())  # type: ignore[arg-type]
    finally:
        store.close()

"""[[retention]]: raw samples older than their rule allows are deleted; the rest is kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from genba.config import GenbaConfig
from genba.errors import ConfigError
from genba.node import Node
from genba.store import TimeRange
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
        assert node.apply_retention() == 4 + 2  # fast: 3, 5, 11, 20 days; slow: 11, 20

        def kept(tag: int) -> list[float]:
            return node.store.raw([tag], TimeRange(0, now + 1)).values.tolist()

        assert sorted(kept(fast)) == [0.0, 1.0]
        assert sorted(kept(slow)) == [0.0, 1.0, 3.0, 5.0]
        assert sorted(kept(other)) == [0.0, 1.0, 3.0, 5.0, 11.0, 20.0]  # no rule: forever
        assert node.apply_retention() == 0
        assert node.health()["store"]["retention_deleted"] == 6
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
    await wait_until(lambda: rn.node.retention_deleted == 1)
    assert rn.node.store.raw([tag.id], TimeRange(0, now + 1)).values.tolist() == [2.0]

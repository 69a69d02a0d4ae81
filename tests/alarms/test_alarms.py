"""Alarm logic: every rule kind, deadband chatter, ISA-18.2 states, shelving and its expiry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from genba.alarms import AlarmEngine, AlarmRule, AlarmStateError, Limit, NoData, Rate, Stuck
from genba.tags import TagRegistry
from genba.types import SampleBatch, TagSpec

NS = 1_000_000_000
TAG = "s/a/l/m/temperature"


def secs(*t: float) -> np.ndarray:
    return (np.array(t) * NS).astype(np.int64)


def engine(*rules: AlarmRule, kept: list[dict[str, Any]] | None = None) -> tuple[AlarmEngine, int]:
    reg = TagRegistry()
    (tag,) = reg.ensure([TagSpec(TAG)])
    return AlarmEngine(list(rules), reg, sink=None if kept is None else kept.append), tag.id


def batch(tag_id: int, ts: np.ndarray, values: list[float]) -> SampleBatch:
    return SampleBatch.from_columns(
        tag_ids=np.full(len(ts), tag_id), ts_ns=ts, values=np.array(values, dtype=float)
    )


def test_high_limit_with_deadband_ignores_chatter() -> None:
    c = Limit(limit=80.0, deadband=2.0, high=True)
    # noise around the limit: without a deadband this would raise 4 alarms
    values = [79.0, 80.5, 79.8, 80.2, 79.9, 80.4, 78.5, 80.1, 77.9, 79.0]
    changes = c.update(secs(*range(10)), np.array(values))
    assert changes == [(1 * NS, True), (8 * NS, False)]
    # with no deadband every crossing counts
    c0 = Limit(limit=80.0, deadband=0.0, high=True)
    assert len(c0.update(secs(*range(10)), np.array(values))) == 8


def test_limit_state_carries_across_batches() -> None:
    c = Limit(limit=10.0, deadband=1.0, high=False)
    assert c.update(secs(0, 1), np.array([12.0, 9.0])) == [(1 * NS, True)]
    assert c.update(secs(2, 3), np.array([10.5, 10.9])) == []  # inside the deadband: still low
    assert c.update(secs(4), np.array([11.0])) == [(4 * NS, False)]


def test_rate_of_change_per_second() -> None:
    c = Rate(limit=2.0, deadband=0.5)
    # +1/s, then a jump of +5 in 1 s, then +1.8/s (inside the deadband), then +1/s
    assert c.update(secs(0, 1, 2), np.array([0.0, 1.0, 6.0])) == [(2 * NS, True)]
    assert c.update(secs(3), np.array([7.8])) == []
    assert c.update(secs(4), np.array([8.8])) == [(4 * NS, False)]
    # the rate is per second whatever the sample interval: 3 in 10 s is slow
    slow = Rate(limit=2.0, deadband=0.0)
    assert slow.update(secs(0, 10), np.array([0.0, 3.0])) == []


def test_stuck_value() -> None:
    c = Stuck(for_s=60, deadband=0.01)
    ts = secs(*range(0, 200, 10))
    values = np.r_[np.linspace(20, 21, 5), np.full(12, 21.004), np.linspace(21.1, 22, 3)]
    # frozen from t=40 s; stuck once 60 s have passed (t=100); moves again at t=170
    assert c.update(ts, values) == [(100 * NS, True), (170 * NS, False)]


def test_stuck_across_batches() -> None:
    c = Stuck(for_s=30, deadband=0.0)
    assert c.update(secs(0, 10, 20), np.array([5.0, 5.0, 5.0])) == []
    assert c.update(secs(30, 40), np.array([5.0, 5.0])) == [(30 * NS, True)]
    assert c.update(secs(50), np.array([6.0])) == [(50 * NS, False)]


def test_no_data_on_the_clock() -> None:
    c = NoData(for_s=30)
    assert c.update(secs(0, 1), np.array([1.0, 1.0])) == []
    assert c.tick(20 * NS) == []
    assert c.tick(32 * NS) == [(31 * NS, True)]  # due 30 s after the last sample
    assert c.tick(40 * NS) == []  # once
    assert c.update(secs(41), np.array([1.0])) == [(41 * NS, False)]


def test_isa_18_2_states_through_an_episode() -> None:
    rule = AlarmRule(tag=TAG, kind="high", limit=80, deadband=2, priority="high", message="Cool")
    kept: list[dict[str, Any]] = []
    eng, tid = engine(rule, kept=kept)
    name = rule.key
    # active → unack; cleared before anyone looks → rtn_unack; acknowledged → normal
    eng.process(batch(tid, secs(0, 1), [70, 85]))
    assert eng.alarms()[0]["state"] == "unack"
    eng.process(batch(tid, secs(2), [75]))
    assert eng.alarms()[0]["state"] == "rtn_unack"
    eng.acknowledge(name, 3 * NS, "ana")
    assert eng.alarms()[0]["state"] == "normal"
    # active again → unack; acknowledged while active → acked; clears → normal
    eng.process(batch(tid, secs(4), [90]))
    eng.acknowledge(name, 5 * NS, "ana")
    assert eng.alarms()[0]["state"] == "acked"
    with pytest.raises(AlarmStateError, match="is acked; only an unacknowledged alarm"):
        eng.acknowledge(name, 6 * NS)
    eng.process(batch(tid, secs(7), [70]))
    assert eng.alarms()[0]["state"] == "normal"
    events = [(e["event"], e["state"]) for e in eng.history]
    assert events == [
        ("activated", "unack"), ("cleared", "rtn_unack"), ("acknowledged", "normal"),
        ("activated", "unack"), ("acknowledged", "acked"), ("cleared", "normal"),
    ]  # fmt: skip
    assert [e["event"] for e in kept] == [e for e, _ in events]  # each handed to the sink
    assert kept[0]["priority"] == "high"
    assert kept[2]["user"] == "ana"


def test_shelving_hides_the_alarm_until_it_expires() -> None:
    rule = AlarmRule(tag=TAG, kind="high", limit=80, deadband=2)
    eng, tid = engine(rule)
    eng.shelve(rule.key, 10, 0, "ben")  # 10 minutes
    eng.process(batch(tid, secs(60), [95]))  # active while shelved: not announced
    assert [e["event"] for e in eng.history] == ["shelved"]
    a = eng.alarms()[0]
    assert (a["state"], a["active"]) == ("shelved", True)
    assert eng.tick(9 * 60 * NS) == []
    (back,) = eng.tick(10 * 60 * NS + 1)
    # the shelf expired and the condition is still active: announced again, unacknowledged
    assert (back["event"], back["state"], back["user"]) == ("unshelved", "unack", "shelf expired")
    # shelved while active, cleared while shelved: comes back normal
    eng.shelve(rule.key, 1, 11 * 60 * NS)
    eng.process(batch(tid, secs(11 * 60 + 5), [70]))
    (back,) = eng.tick(12 * 60 * NS + 1)
    assert back["state"] == "normal"


def test_every_alarm_listed_with_priority_first() -> None:
    rules = [
        AlarmRule(tag=TAG, kind="low", limit=5, priority="low"),
        AlarmRule(tag=TAG, kind="high", limit=80, priority="urgent"),
        AlarmRule(tag=TAG, kind="no_data", for_s=30, priority="medium"),
    ]
    eng, tid = engine(*rules)
    eng.process(batch(tid, secs(0, 1), [90, 3]))
    listed = [(a["kind"], a["priority"], a["state"], a["value"]) for a in eng.alarms()]
    assert listed == [
        ("high", "urgent", "rtn_unack", 3.0),  # went high at 90, back at 3, not acknowledged
        ("no_data", "medium", "normal", 3.0),
        ("low", "low", "unack", 3.0),
    ]
    (ev,) = eng.tick(40 * NS)
    assert (ev["alarm"], ev["event"]) == (f"{TAG}:no_data", "activated")


def test_listeners_hear_every_event_and_a_failing_one_is_contained() -> None:
    heard: list[str] = []

    def broken(_: dict[str, object]) -> None:
        raise RuntimeError("webhook down")

    eng, tid = engine(AlarmRule(tag=TAG, kind="high", limit=80))
    eng.listeners += [broken, lambda e: heard.append(str(e["event"]))]
    eng.process(batch(tid, secs(0), [99]))
    assert heard == ["activated"]


def test_bad_rules_and_actions_name_the_fix() -> None:
    with pytest.raises(ValidationError, match="a high alarm needs a limit"):
        AlarmRule(tag=TAG, kind="high")
    with pytest.raises(ValidationError, match=r"a stuck alarm needs for_s \(seconds\)"):
        AlarmRule(tag=TAG, kind="stuck")
    with pytest.raises(ValueError, match="share the name 'x'"):
        engine(AlarmRule(tag=TAG, kind="high", limit=1, name="x"),
               AlarmRule(tag=TAG, kind="low", limit=0, name="x"))  # fmt: skip
    eng, _ = engine(AlarmRule(tag=TAG, kind="high", limit=80))
    with pytest.raises(
        AlarmStateError, match="No alarm named 'nope'; alarms: s/a/l/m/temperature:high"
    ):
        eng.acknowledge("nope", 0)
    with pytest.raises(AlarmStateError, match="is normal, not shelved"):
        eng.unshelve(f"{TAG}:high", 0)

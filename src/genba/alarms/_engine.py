"""The alarm engine: rules from ``[[alarm]]`` evaluated on every batch, ISA-18.2 states,
operator actions, a history, and listeners for notifications.

>>> from genba.tags import TagRegistry
>>> from genba.types import SampleBatch, TagSpec
>>> reg = TagRegistry(); (tag,) = reg.ensure([TagSpec("s/a/l/m/temp")])
>>> eng = AlarmEngine([AlarmRule(tag="s/a/l/m/temp", kind="high", limit=80, deadband=2)], reg)
>>> b = SampleBatch.from_columns(tag_ids=np.array([tag.id] * 3), ts_ns=np.arange(3), values=np.array([70.0, 85, 90]))
>>> [(e["alarm"], e["event"], e["value"]) for e in eng.process(b)]
[('s/a/l/m/temp:high', 'activated', 85.0)]
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from genba.alarms._conditions import Condition, Limit, NoData, Rate, Stuck
from genba.alarms._state import AlarmState, AlarmStateError
from genba.paths import check_path
from genba.tags import TagRegistry
from genba.types import SampleBatch

log = logging.getLogger("genba.alarms")
PRIORITIES = ("low", "medium", "high", "urgent")
KEEP_IN_MEMORY = 10_000
Listener = Callable[[dict[str, Any]], None]


MAX_FOR_S = 366 * 86_400.0
"""A timer longer than a year is a mistake (and 1e300 s once overflowed the alarm clock)."""


class AlarmRule(BaseModel):
    """``[[alarm]]``: one alarm on one tag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(max_length=1000, description="Tag path the alarm watches.")
    kind: Literal["high", "low", "rate", "stuck", "no_data"] = Field(
        description="high / low: value beyond limit; rate: |change per second| above limit; "
        "stuck: no change beyond deadband for for_s; no_data: no sample for for_s."
    )
    name: str = Field("", max_length=200, description="Unique name (default: '<tag>:<kind>').")
    limit: float | None = Field(
        None, allow_inf_nan=False, description="high, low: the value; rate: per second."
    )
    deadband: float = Field(
        0.0, ge=0, allow_inf_nan=False,
        description="high/low/rate: how far back the value must come to clear; "
        "stuck: the smallest change that counts as moving.",
    )  # fmt: skip
    for_s: float | None = Field(
        None, gt=0, le=MAX_FOR_S, description="stuck, no_data: seconds (at most a year)."
    )
    priority: Literal["low", "medium", "high", "urgent"] = Field(
        "medium", description="low, medium, high or urgent."
    )
    message: str = Field("", max_length=500, description="What the operator should know or do.")

    @model_validator(mode="after")
    def _needs(self) -> AlarmRule:
        check_path(self.tag)
        if self.kind in ("high", "low", "rate") and self.limit is None:
            raise ValueError(f"a {self.kind} alarm needs a limit")
        if self.kind in ("stuck", "no_data") and self.for_s is None:
            raise ValueError(f"a {self.kind} alarm needs for_s (seconds)")
        return self

    @property
    def key(self) -> str:
        return self.name or f"{self.tag}:{self.kind}"

    def condition(self) -> Condition:
        if self.kind in ("high", "low"):
            assert self.limit is not None
            return Limit(self.limit, self.deadband, high=self.kind == "high")
        if self.kind == "rate":
            assert self.limit is not None
            return Rate(self.limit, self.deadband)
        assert self.for_s is not None
        if self.kind == "stuck":
            return Stuck(self.for_s, self.deadband)
        return NoData(self.for_s)


class AlarmSettings(BaseModel):
    """``[alarms]``: where alarm events are announced (every state change of every alarm)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str = Field("", description="POST each event as JSON to this URL ('' for none).")
    mqtt: str = Field("", description="host:port of an MQTT broker to publish events to.")
    mqtt_topic: str = Field(
        "genba/alarms", description="Events go to <mqtt_topic>/<alarm name>, QoS 1."
    )


class AlarmEngine:
    """Evaluates ``rules`` on batches (columnar, per rule) and keeps every alarm's state."""

    def __init__(
        self,
        rules: list[AlarmRule],
        registry: TagRegistry,
        *,
        sink: Listener | None = None,
    ) -> None:
        names = [r.key for r in rules]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"two [[alarm]] rules share the name {sorted(dup)[0]!r}; name them")
        self.rules = {r.key: r for r in rules}
        self.registry = registry
        self.conditions = {r.key: r.condition() for r in rules}
        self.states = {r.key: AlarmState(r.key) for r in rules}
        self.values: dict[str, float | None] = {r.key: None for r in rules}
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP_IN_MEMORY)
        self.sink = sink
        """Where every event is kept (the node's record log, ``alarm.event``)."""
        self.listeners: list[Listener] = []
        self.details: dict[str, Callable[[], str]] = {}
        """What the component behind an alarm knows when it fires (an anomaly model's top
        signals), by alarm name: added to the message of its ``activated`` events."""

    def add_rule(self, rule: AlarmRule) -> None:
        """Start evaluating ``rule`` (from the API); its name must be new."""
        if rule.key in self.rules:
            raise AlarmStateError(
                f"An alarm named {rule.key!r} exists already; give the new rule another name."
            )
        self.rules[rule.key] = rule
        self.conditions[rule.key] = rule.condition()
        self.states[rule.key] = AlarmState(rule.key)
        self.values[rule.key] = None

    def remove_rule(self, name: str) -> AlarmRule:
        self.rule(name)
        for table in (self.conditions, self.states, self.values):
            del table[name]
        return self.rules.pop(name)

    # -- evaluation ------------------------------------------------------------------------
    def process(self, batch: SampleBatch) -> list[dict[str, Any]]:
        """Evaluate every rule on the samples of its tag in ``batch``; the events it caused.

        One pass over the batch picks the rows of watched tags and orders them by (tag, time);
        each rule then works on its tag's slice."""
        ids = {
            key: self.registry.get(r.tag).id
            for key, r in self.rules.items()
            if r.tag in self.registry
        }
        if not ids:
            return []
        hit = np.flatnonzero(np.isin(batch.tag_ids, np.fromiter(ids.values(), dtype=np.int64)))
        if len(hit) == 0:
            return []
        tag, ts, values = batch.tag_ids[hit], batch.ts_ns[hit], batch.values[hit]
        order = np.lexsort((ts, tag))
        tag, ts, values = tag[order], ts[order], values[order]
        events: list[dict[str, Any]] = []
        for key, tag_id in ids.items():
            a, b = np.searchsorted(tag, [tag_id, tag_id + 1])
            if a == b:
                continue
            t, v = ts[a:b], values[a:b]
            for at, active in self.conditions[key].update(t, v):
                value = float(v[min(int(np.searchsorted(t, at)), len(t) - 1)])
                self.values[key] = value
                ev = self.states[key].condition(active, at)
                if ev is not None:
                    events.append(self._record(ev, value=value))
            self.values[key] = float(v[-1])
        return events

    def tick(self, now_ns: int) -> list[dict[str, Any]]:
        """Clock-driven checks: no-data timers and shelves that expire."""
        events = []
        for key, cond in self.conditions.items():
            if isinstance(cond, NoData):
                for t, active in cond.tick(now_ns):
                    ev = self.states[key].condition(active, t)
                    if ev is not None:
                        events.append(self._record(ev, value=None))
            ev = self.states[key].tick(now_ns)
            if ev is not None:
                events.append(self._record(ev))
        return events

    # -- operators -------------------------------------------------------------------------
    def _state(self, name: str) -> AlarmState:
        self.rule(name)
        return self.states[name]

    def rule(self, name: str) -> AlarmRule:
        """The rule of alarm ``name``, or an error listing the alarms there are."""
        try:
            return self.rules[name]
        except KeyError:
            raise AlarmStateError(
                f"No alarm named {name!r}; alarms: {', '.join(sorted(self.rules)) or '(none)'}."
            ) from None

    def acknowledge(self, name: str, now_ns: int, user: str = "") -> dict[str, Any]:
        return self._record(self._state(name).acknowledge(now_ns, user))

    def shelve(self, name: str, minutes: float, now_ns: int, user: str = "") -> dict[str, Any]:
        return self._record(self._state(name).shelve(now_ns, minutes, user))

    def unshelve(self, name: str, now_ns: int, user: str = "") -> dict[str, Any]:
        return self._record(self._state(name).unshelve(now_ns, user))

    def alarms(self) -> list[dict[str, Any]]:
        """Every alarm with its rule, state, condition and last value (urgent first)."""
        out = []
        for key, rule in self.rules.items():
            st = self.states[key]
            out.append(
                {
                    "name": key,
                    "tag": rule.tag,
                    "kind": rule.kind,
                    "priority": rule.priority,
                    "message": rule.message,
                    "state": st.state,
                    "active": st.active,
                    "since_ms": None if st.since_ns is None else st.since_ns // 1_000_000,
                    "shelved_until_ms": None
                    if st.shelved_until_ns is None
                    else st.shelved_until_ns // 1_000_000,
                    "value": self.values[key],
                }
            )
        out.sort(key=lambda a: (-PRIORITIES.index(a["priority"]), a["name"]))
        return out

    # -- history and notifications ---------------------------------------------------------
    def _record(self, event: dict[str, Any], **extra: Any) -> dict[str, Any]:
        rule = self.rules[event["alarm"]]
        message = rule.message
        detail = self.details.get(event["alarm"]) if event.get("event") == "activated" else None
        if detail is not None:
            try:
                message = f"{message} {detail()}".strip()
            except Exception:  # what a component adds must not stop alarm handling
                log.exception("alarm detail failed on %s", event["alarm"])
        ev = event | {"tag": rule.tag, "priority": rule.priority, "message": message} | extra
        self.history.append(ev)
        if self.sink is not None:
            self.sink(ev)
        for listener in self.listeners:
            try:
                listener(ev)
            except Exception:  # a failing notifier must not stop alarm handling
                log.exception("alarm listener failed on %s", ev["alarm"])
        return ev

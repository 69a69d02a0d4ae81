"""The node's alarms: the engine fed from the bus, a clock for timers and shelves, rules added
through the API kept on disk, and notifications by webhook and MQTT."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
from pathlib import Path
from typing import Any, ClassVar, Self

import aiomqtt
import httpx
from pydantic import TypeAdapter

from genba.alarms import AlarmEngine, AlarmRule, AlarmSettings, AlarmStateError
from genba.bus import Bus, Overflow
from genba.clock import Clock
from genba.component import ComponentContext, Shutdown
from genba.config import ALARM_RULES, ALARMS, Section
from genba.errors import ConfigError, QueryError, StoreError
from genba.historian import Record, RecordLog
from genba.tags import TagRegistry
from genba.types import NS_PER_MS, SampleBatch


def _rule_body(rule: AlarmRule) -> dict[str, Any]:
    return {"rule": rule.model_dump(mode="json", exclude_defaults=True)}


log = logging.getLogger("genba.alarms")
RULE = "alarm.rule"
"""Record kind of a rule added (``{"rule": {...}}``) or removed (``{"removed": true}``)."""
EVENT = "alarm.event"
NOTIFY_QUEUE = 10_000
_RULES = TypeAdapter(list[AlarmRule])


class AlarmService:
    """ISA-18.2 alarms of ``[[alarm]]`` rules and those added through the API (``[alarms]``
    says where notifications go)."""

    name: ClassVar[str] = "alarms"
    order: ClassVar[int] = 60
    sections: ClassVar[tuple[Section[Any], ...]] = (ALARM_RULES, ALARMS)
    shutdown: ClassVar[Shutdown] = Shutdown.DRAIN

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self:
        return cls(
            list(ctx.config.section(ALARM_RULES)),
            ctx.config.section(ALARMS),
            bus=ctx.bus,
            registry=ctx.registry,
            clock=ctx.clock,
            records=ctx.records,
            data_dir=ctx.data_dir,
        )

    def __init__(
        self,
        rules: list[AlarmRule],
        settings: AlarmSettings,
        *,
        bus: Bus,
        registry: TagRegistry,
        clock: Clock,
        records: RecordLog,
        data_dir: Path,
    ) -> None:
        self.settings = settings
        self.records = records
        self.clock = clock
        self.registry = registry
        self.unseen: list[str] = []
        """Rules of genba.toml on tags nobody has declared yet (a source may bring them)."""
        for rule in rules:
            self._check_tag(rule, strict=False)
        added = self._load_rules(data_dir / "alarm-rules.json")
        self.engine = AlarmEngine(
            [*rules, *added],
            registry,
            sink=lambda ev: records.put(EVENT, ev["alarm"], ev, ev["ts_ms"] * NS_PER_MS),
        )
        self.added = {r.key: r for r in added}
        self.sub = bus.subscribe("#", name="alarms", overflow=Overflow.BLOCK)
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(NOTIFY_QUEUE)
        self.dropped = 0
        self.sent = 0
        self.tick_errors = 0
        if settings.webhook or settings.mqtt:
            self.engine.listeners.append(self._enqueue)

    def _enqueue(self, event: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.warning(
                    "alarm notifications: %d dropped, the receivers are too slow", self.dropped
                )

    def _check_tag(self, rule: AlarmRule, *, strict: bool) -> None:
        """A rule must watch a tag that exists. A rule of genba.toml may name a tag that a
        source has not declared yet (an MQTT topic, a Sparkplug metric not born yet), unless
        it is close to one that exists — a typo, which would stay normal forever."""
        if rule.tag in self.registry:
            return
        close = difflib.get_close_matches(
            rule.tag, [t.path for t in self.registry], n=3, cutoff=0.8
        )
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        msg = (
            f"Alarm {rule.key!r} watches the tag {rule.tag!r}, which does not exist; {hint}"
            "`genba tags` lists the node's tags."
        )
        if strict:
            raise QueryError(msg)
        if close:
            raise ConfigError(f"[[alarm]] {msg}", key="alarm.tag")
        log.warning("%s It is watched once a source declares it.", msg)
        self.unseen.append(rule.key)

    def _load_rules(self, old_file: Path) -> list[AlarmRule]:
        """The rules added through the API: the newest ``alarm.rule`` record of each name
        (a removal is a record without ``rule``). A node of an earlier genba kept them in
        ``alarm-rules.json``: they are moved into the record log once."""
        if old_file.exists() and not self.records.store.records(RULE, limit=1):
            old = _RULES.validate_json(old_file.read_bytes())
            now = self.clock.now_ns()
            self.records.append_now([Record(RULE, now, r.key, _rule_body(r)) for r in old])
            old_file.rename(old_file.with_suffix(".json.moved"))
            log.info("alarms: %d rules moved from %s into the record log", len(old), old_file)
        latest: dict[str, dict[str, Any]] = {}
        for r in self.records.store.records(RULE, limit=1_000_000):
            latest[r.key] = r.body
        return [AlarmRule.model_validate(b["rule"]) for b in latest.values() if "rule" in b]

    def add_rule(self, rule: AlarmRule) -> None:
        self._check_tag(rule, strict=True)
        self.engine.add_rule(rule)
        try:
            self._save(rule.key, _rule_body(rule))
        except StoreError:
            self.engine.remove_rule(rule.key)
            raise
        self.added[rule.key] = rule

    def remove_rule(self, name: str) -> None:
        self.engine.rule(name)  # an unknown name: the engine's error
        if name not in self.added:
            raise AlarmStateError(
                f"Alarm {name!r} comes from genba.toml; remove it there (only rules added "
                "through the API can be removed through it)."
            )
        self._save(name, {"removed": True})
        self.engine.remove_rule(name)
        del self.added[name]

    def _save(self, name: str, body: dict[str, Any]) -> None:
        """Append the change to the record log before answering; a store that refuses it
        is a :class:`StoreError` (503) and nothing changed."""
        try:
            self.records.append_now([Record(RULE, self.clock.now_ns(), name, body)])
        except StoreError as e:
            raise StoreError(
                f"cannot save the alarm rule {name!r} ({e}): nothing changed; free disk space "
                "or mount the data dir read-write, then send it again"
            ) from e

    async def run(self) -> None:
        """Evaluate every batch until the bus closes; meanwhile run timers and notifications."""
        async with asyncio.TaskGroup() as tg:
            helpers = [
                tg.create_task(self._tick(), name="alarms:clock"),
                tg.create_task(self._notify(), name="alarms:notify"),
            ]
            try:
                async for item in self.sub:
                    if isinstance(item, SampleBatch):
                        try:
                            self.engine.process(item)
                        except Exception:  # one bad evaluation must not stop the node
                            log.exception("alarm evaluation failed on a batch of %d", len(item))
            finally:
                for h in helpers:
                    h.cancel()

    async def _tick(self) -> None:
        while True:
            try:
                self.engine.tick(self.clock.now_ns())
            except Exception:  # one bad timer must not stop the alarms, let alone the node
                self.tick_errors += 1
                log.exception("alarm timers failed; trying again in a second")
            await self.clock.sleep(1.0 * self.clock.speed)

    async def _notify(self) -> None:
        s = self.settings
        if not (s.webhook or s.mqtt):
            return
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                event = await self.outbox.get()
                if s.webhook:
                    try:
                        (await http.post(s.webhook, json=event)).raise_for_status()
                        self.sent += 1
                    except httpx.HTTPError as e:
                        log.warning("alarm webhook %s: %s", s.webhook, e)
                if s.mqtt:
                    await self._publish_mqtt(event)

    async def _publish_mqtt(self, event: dict[str, Any]) -> None:
        # One connection per event: alarm events are rare, and nothing is held open to fail.
        host, _, port = self.settings.mqtt.rpartition(":")
        topic = f"{self.settings.mqtt_topic}/{event['alarm']}"
        try:
            async with aiomqtt.Client(host, int(port), identifier="genba-alarms") as client:
                await client.publish(topic, json.dumps(event), qos=1)
            self.sent += 1
        except aiomqtt.MqttError as e:
            log.warning("alarm MQTT %s: %s", self.settings.mqtt, e)

    def problems(self) -> list[str]:
        return []  # the record log counts what the store did not take

    def history(self, limit: int) -> list[dict[str, Any]]:
        """Alarm events, newest first (across restarts: they are in the record log)."""
        return [r.body for r in self.records.read(EVENT, limit=limit)]

    def health(self) -> dict[str, Any]:
        active = [a for a in self.engine.alarms() if a["active"]]
        return {
            "rules": len(self.engine.rules),
            "active": len(active),
            "unacknowledged": sum(
                a["state"] in ("unack", "rtn_unack") for a in self.engine.alarms()
            ),
            "notifications_sent": self.sent,
            "notifications_dropped": self.dropped,
            "timer_errors": self.tick_errors,
            "watching_unseen_tags": [
                k for k in self.unseen if self.engine.rules[k].tag not in self.registry
            ],
        }

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
from genba.config import ALARM_RULES, ALARMS, Section
from genba.errors import ConfigError, QueryError, StoreError
from genba.node._component import ComponentContext, Shutdown
from genba.tags import TagRegistry
from genba.types import SampleBatch

log = logging.getLogger("genba.alarms")
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
        data_dir: Path,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = registry
        self.unseen: list[str] = []
        """Rules of genba.toml on tags nobody has declared yet (a source may bring them)."""
        for rule in rules:
            self._check_tag(rule, strict=False)
        self.rules_path = data_dir / "alarm-rules.json"
        added = (
            _RULES.validate_json(self.rules_path.read_bytes()) if self.rules_path.exists() else []
        )
        self.engine = AlarmEngine(
            [*rules, *added], registry, history_path=data_dir / "alarms.jsonl"
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

    def add_rule(self, rule: AlarmRule) -> None:
        self._check_tag(rule, strict=True)
        self.engine.add_rule(rule)
        try:
            self._save([*self.added.values(), rule])
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
        self._save([r for k, r in self.added.items() if k != name])
        self.engine.remove_rule(name)
        del self.added[name]

    def _save(self, rules: list[AlarmRule]) -> None:
        """Write the API's rules; a full or read-only disk is a :class:`StoreError` (503)."""
        tmp = self.rules_path.with_suffix(".tmp")
        try:
            tmp.write_bytes(_RULES.dump_json(rules, indent=1))
            tmp.replace(self.rules_path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(
                f"cannot save the alarm rules to {self.rules_path} ({e}): nothing changed; "
                "free disk space or mount the data dir read-write, then send it again"
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
        return []  # write failures of the history are counted in health; storage says why

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
            "history_write_errors": self.engine.history_write_errors,
            "watching_unseen_tags": [
                k for k in self.unseen if self.engine.rules[k].tag not in self.registry
            ],
        }

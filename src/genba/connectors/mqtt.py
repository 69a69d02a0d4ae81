"""MQTT, unified namespace, JSON: subscribe to topic filters, one tag per topic.

The tag path is the topic (minus ``strip_prefix``, plus ``tag_prefix``); payloads are read
by :mod:`genba.connectors._payload`. MQTT 3.1.1 or 5, user/password, TLS, reconnection with
jittered backoff. Unusable messages become dead letters with their reason; the connector
carries on. Messages are gathered into one columnar batch every ``batch_ms``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import ClassVar, Literal, Self

import aiomqtt
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, Field, model_validator

from genba.connectors._base import ConnectorContext
from genba.connectors._broker import BrokerSettings
from genba.connectors._gather import ACK_EVERY, Pending, ack_when_stored, consume
from genba.connectors._payload import PayloadError, decode
from genba.errors import NotConnectedError, PatternError, WriteRejectedError
from genba.paths import check_pattern
from genba.retry import Session
from genba.types import NS_PER_S, TagId, TagSpec

log = logging.getLogger("genba.connectors.mqtt")
SPARKPLUG = "spBv1.0/"


_PLACEHOLDER = re.compile(r"\{(\d+|#)\}")


class TopicRule(BaseModel):
    """``[[connector.map]]``: topics matching ``topic`` become the tag path ``tag``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(description="MQTT topic filter; each '+' and a final '#' capture levels.")
    tag: str = Field(
        description="Tag path template: {1}, {2}… are the levels the '+'s matched, in order; "
        "{#} is what the '#' matched."
    )
    unit: str = Field("", description="Unit of the tags this rule makes (e.g. 'degC').")

    @model_validator(mode="after")
    def _placeholders_exist(self) -> Self:
        try:
            check_pattern(self.topic)
        except PatternError as e:
            raise ValueError(str(e)) from None
        levels = self.topic.split("/")
        plus = levels.count("+")
        for name in _PLACEHOLDER.findall(self.tag):
            if name == "#" and levels[-1] != "#":
                raise ValueError(f"tag {self.tag!r} uses {{#}} but topic {self.topic!r} has no '#'")
            if name != "#" and not 1 <= int(name) <= plus:
                raise ValueError(
                    f"tag {self.tag!r} uses {{{name}}} but topic {self.topic!r} has {plus} '+' "
                    f"level(s): use {{1}}..{{{plus}}}"
                )
        return self

    def apply(self, topic: str) -> str | None:
        """The tag path for ``topic``, or None if the rule does not match it."""
        t_levels = topic.split("/")
        plus: list[str] = []
        rest = ""
        for i, f in enumerate(self.topic.split("/")):
            if f == "#":
                rest = "/".join(t_levels[i:])
                break
            if i >= len(t_levels) or (f != "+" and f != t_levels[i]):
                return None
            if f == "+":
                plus.append(t_levels[i])
        else:
            if len(t_levels) != len(self.topic.split("/")):
                return None
        return _PLACEHOLDER.sub(
            lambda m: rest if m.group(1) == "#" else plus[int(m.group(1)) - 1], self.tag
        )


class MqttSettings(BrokerSettings):
    """Options of ``[[connector]]`` when ``kind = "mqtt"`` (and the broker's, shared)."""

    topics: list[str] = Field(["#"], description="Topic filters to subscribe to.")
    qos: int = Field(1, ge=0, le=2, description="Subscription QoS.")
    ack: Literal["stored", "received"] = Field(
        "stored",
        description="When QoS 1/2 messages are acknowledged to the broker: 'stored' - once "
        "their samples are committed to the store, so a crash of the node loses nothing (the "
        "broker resends the rest); 'received' - on receipt, faster, but a crash loses what was "
        "not yet written (up to [store] flush_interval_ms).",
    )
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="MQTT protocol version. 3.1.1 reads 2.6x more messages/s (bench/connect.py): paho parses "
        "MQTT 5 properties of every message in Python.",
    )
    client_id: str = Field("", description="Client id (default: genba-<node>-<connector>).")
    clean_session: bool = Field(
        False,
        description="Start a fresh session on each connect. By default the session persists: "
        "the broker keeps QoS 1/2 messages for genba while it is away and hands them over on "
        "reconnect.",
    )
    session_expiry_s: int = Field(
        86_400, ge=0, description="MQTT 5: how long the broker keeps the session after a drop."
    )
    map: list[TopicRule] = Field(
        [],
        description="Topic → tag rules ([[connector.map]]), tried in order; the first match wins.",
    )
    unmapped: Literal["keep", "ignore"] = Field(
        "keep",
        description="Topics no rule matches: 'keep' (the topic is the tag path) or 'ignore' "
        "(counted in the connector's health, not stored).",
    )
    strip_prefix: str = Field("", description="Removed from the front of topics to make tags.")
    tag_prefix: str = Field("", description="Put in front of tag paths.")
    max_payload_bytes: int = Field(262_144, gt=0, description="Larger messages are refused.")
    write_suffix: str = Field(
        "/set",
        description='A write of a tag ([[connector]] writable) publishes {"value": v} at QoS 1 '
        "to the topic the tag is read from plus this suffix; the device answers by publishing "
        "its new value on the tag's topic.",
    )


class MqttConnector:
    """Reads JSON samples from an MQTT broker's unified namespace."""

    kind: ClassVar[str] = "mqtt"
    Settings: ClassVar[type[BaseModel]] = MqttSettings

    def __init__(self, settings: MqttSettings, ctx: ConnectorContext) -> None:
        for t in settings.topics:
            check_pattern(t)
        self.s = settings
        self.ctx = ctx
        self._ids: dict[str, TagId] = {}
        self._paths: dict[str, tuple[str, str] | None] = {}
        self.ignored_unmapped = 0
        self._pending = Pending()
        self.ignored_sparkplug = 0
        self._topics: dict[str, str] = {}  # tag path → the topic it is read from (writes)
        self._commands: set[str] = set()  # topics genba wrote to: not data, not read back
        self._connected: aiomqtt.Client | None = None

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        if not isinstance(settings, MqttSettings):
            raise TypeError(f"expected MqttSettings, got {type(settings).__name__}")
        return cls(settings, ctx)

    def _client(self) -> aiomqtt.Client:
        s = self.s
        v5 = s.protocol == "5"
        properties = None
        if v5 and not s.clean_session:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s
        return aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id or f"genba-{self.ctx.config.node.name}-{self.ctx.name}",
            username=s.username,
            password=s.secret(),
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else s.clean_session,
            clean_start=s.clean_session if v5 else MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
            tls_params=s.tls_params(),
        )

    def tag_path(self, topic: str) -> tuple[str, str] | None:
        """(tag path, unit) for ``topic``: by the first matching rule, else the topic itself
        (less ``strip_prefix``, plus ``tag_prefix``); None when unmapped topics are ignored."""
        found = self._paths.get(topic)
        if found is not None or topic in self._paths:
            return found
        for rule in self.s.map:
            path = rule.apply(topic)
            if path is not None:
                found = (self.s.tag_prefix + path, rule.unit)
                break
        else:
            if self.s.unmapped == "keep":
                t = topic
                if self.s.strip_prefix and t.startswith(self.s.strip_prefix):
                    t = t[len(self.s.strip_prefix) :].lstrip("/")
                found = (self.s.tag_prefix + t, "")
        if len(self._paths) < 1_000_000:  # a topic flood must not grow this without bound
            self._paths[topic] = found
        return found

    def handle(self, topic: str, payload: bytes) -> None:
        """Decode one message into the pending batch, or record it as a dead letter."""
        if topic.startswith(SPARKPLUG):
            self.ignored_sparkplug += 1  # binary Sparkplug B: the sparkplug connector's job
            return
        if topic in self._commands:  # our own write, seen through a wide subscription
            return
        if len(payload) > self.s.max_payload_bytes:
            self.ctx.reject(
                f"payload of {len(payload)} bytes is over max_payload_bytes = "
                f"{self.s.max_payload_bytes}",
                topic=topic,
                payload=payload,
            )
            return
        mapped = self.tag_path(topic)
        if mapped is None:
            self.ignored_unmapped += 1
            return
        base, unit = mapped
        try:
            samples = decode(
                payload,
                base,
                now_ns=self.ctx.clock.now_ns(),
                max_future_ns=int(self.s.max_future_s * NS_PER_S),
            )
            for path, _, _ in samples:
                if path not in self._ids:
                    self._ids[path] = self.ctx.declare([TagSpec(path, unit)])[0].id
                    if path == base and len(self._topics) < 1_000_000:
                        self._topics[path] = topic
        except (PayloadError, ValueError) as e:
            self.ctx.reject(str(e), topic=topic, payload=payload)
            return
        for path, ts, value in samples:
            self._pending.add(self._ids[path], ts, value)

    async def write(self, path: str, value: float) -> float | None:
        """Publish ``{"value": v}`` to the tag's topic plus ``write_suffix`` (QoS 1); the
        device's next message on the tag's topic reads it back."""
        topic = self._topics.get(path)
        if topic is None:
            raise WriteRejectedError(
                self.ctx.name, path, value, "no message of this tag has come in yet, so its "
                "topic is not known (or it is a field of a JSON object, which has no topic "
                "of its own)"
            )  # fmt: skip
        client = self._connected
        if client is None:
            raise NotConnectedError(self.ctx.name, path, f"no link to {self.s.host}:{self.s.port}")
        self._commands.add(topic + self.s.write_suffix)
        try:
            await client.publish(topic + self.s.write_suffix, json.dumps({"value": value}), qos=1)
        except aiomqtt.MqttError as e:
            raise NotConnectedError(self.ctx.name, path, str(e)) from e
        return None

    async def flush(self) -> None:
        self.ctx.health.details = {
            "ignored_unmapped": self.ignored_unmapped,
            "ignored_sparkplug": self.ignored_sparkplug,
        }
        await self.ctx.publish(self._pending.take(), durable=self._acks)

    @property
    def _acks(self) -> bool:
        """Acknowledge messages only once stored (QoS 1/2 and ``ack = "stored"``)."""
        return self.s.ack == "stored" and self.s.qos > 0

    async def run(self) -> None:
        await self.ctx.keep_connected(
            self._serve, errors=(aiomqtt.MqttError,), max_s=self.s.reconnect_max_s
        )

    async def _serve(self, session: Session) -> None:
        client = self._client()
        if self._acks:
            ack_when_stored(client)
        async with client:
            for t in self.s.topics:
                await client.subscribe(t, qos=self.s.qos)
            self._connected = client
            session.connected()
            log.info("%s: connected to %s:%d", self.ctx.name, self.s.host, self.s.port)
            try:
                await consume(
                    client,
                    self.handle,
                    self.flush,
                    batch_ms=self.s.batch_ms,
                    name=self.ctx.name,
                    ack_every=ACK_EVERY if self._acks else 0,
                )
            finally:
                self._connected = None

"""The connector contract and the context a node hands each connector."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

import numpy as np
from pydantic import BaseModel

from genba import plugins
from genba.bus import Bus
from genba.clock import Clock
from genba.config import ConnectorSettings, GenbaConfig
from genba.deadletter import DeadLetters
from genba.errors import ConfigError
from genba.paths import matches
from genba.retry import Session
from genba.types import Quality, SampleBatch, Tag, TagId, TagSpec


class TagLimitError(ValueError):
    """A source would create more tags than ``[[connector]] max_tags``: a dead letter."""


@dataclass(slots=True)
class ConnectorHealth:
    """What the API shows of a connector: is it connected, how much and how recently."""

    name: str
    kind: str
    connected: bool = False
    samples: int = 0
    batches: int = 0
    errors: int = 0
    dead_letters: int = 0
    last_message_ns: int | None = None
    last_error: str = ""
    stale_tags: int = 0
    """Tags of this connector marked stale (their source gone) and not heard from since."""
    details: dict[str, object] = field(default_factory=dict)
    """What only this kind of connector reports (e.g. Sparkplug's stale edge nodes)."""
    link: Session | None = None
    """The connector's link session (:meth:`ConnectorContext.keep_connected`), if it has one."""
    _rate_mark: tuple[float, int] = (0.0, 0)
    _rate: float = 0.0

    def failed(self, reason: str) -> None:
        """The link or the device failed: not connected, one more error, and why."""
        self.connected = False
        self.errors += 1
        self.last_error = reason

    def samples_per_s(self) -> float:
        """Samples a second, averaged over at least the last 5 s of wall time."""
        now = time.monotonic()
        t0, n0 = self._rate_mark
        if now - t0 >= 5.0:
            if t0:
                self._rate = (self.samples - n0) / (now - t0)
            self._rate_mark = (now, self.samples)
        return self._rate

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "connected": self.connected,
            "state": self.link.state.value
            if self.link is not None
            else ("connected" if self.connected else "stopped"),
            "samples": self.samples,
            "samples_per_s": round(self.samples_per_s(), 1),
            "batches": self.batches,
            "errors": self.errors,
            "dead_letters": self.dead_letters,
            "last_message_ms": None
            if self.last_message_ns is None
            else self.last_message_ns // 1_000_000,
            "last_error": self.last_error,
            "stale_tags": self.stale_tags,
            "details": self.details,
        }


@dataclass(slots=True)
class ConnectorContext:
    """What a connector may use: the node's config, tags, bus and clock."""

    name: str
    config: GenbaConfig
    bus: Bus
    clock: Clock
    health: ConnectorHealth
    dead_letters: DeadLetters = field(default_factory=lambda: DeadLetters(None))
    publish_durable: Callable[[SampleBatch], Awaitable[None]] | None = None
    """The node's publish that returns once the samples are stored (None: no historian)."""
    stale_after_s: float | None = None
    """Heartbeat timeout of ``[[connector]] stale_after_s`` (None: none, report by exception)."""
    max_tags: int = 100_000
    """``[[connector]] max_tags``: :meth:`declare` refuses to create more."""
    writable: tuple[str, ...] = ()
    """``[[connector]] writable``: filters of the tags genba may write through it."""
    write_timeout_s: float = 5.0
    """``[[connector]] write_timeout_s``: for the device to take a write and to read it back."""
    owners: dict[TagId, str] = field(default_factory=dict)
    """Which connector owns each tag (the first that declared it); shared by the node's."""
    session: Session | None = None
    """The link's session while :meth:`keep_connected` runs it."""
    _config_specs: dict[str, TagSpec] = field(default_factory=dict)
    _owned: set[int] = field(default_factory=set)
    _stale: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._config_specs = {s.path: s for s in self.config.tag_specs()}

    def declare(self, specs: list[TagSpec]) -> list[Tag]:
        """Register the tags this connector will publish; the config's metadata wins."""
        merged = [
            s.merged(self._config_specs[s.path]) if s.path in self._config_specs else s
            for s in specs
        ]
        registry = self.bus.registry
        new = {s.path for s in merged if s.path not in registry}
        if new and len(self._owned) + len(new) > self.max_tags:
            raise TagLimitError(
                f"connector {self.name!r} would create tag {min(new)!r} beyond its "
                f"max_tags = {self.max_tags}; raise [[connector]] max_tags if the source "
                "really has that many, or map its topics to fewer tags"
            )
        tags = registry.ensure(merged)
        self._owned.update(t.id for t in tags)
        for t in tags:
            self.owners.setdefault(t.id, self.name)
        return tags

    async def keep_connected(
        self,
        serve: Callable[[Session], Awaitable[None]],
        *,
        errors: tuple[type[BaseException], ...],
        max_s: float,
        first_s: float = 0.5,
        on_lost: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> None:
        """Run the connector's link with one :class:`~genba.retry.Session`: ``serve`` opens
        it and calls ``session.connected()`` once it is up (health says connected); when it
        fails with one of ``errors`` the failure is in health, ``on_lost`` runs, every tag of
        the connector is marked stale (nothing the source said holds now) and it is opened
        again after a backoff wait of up to ``max_s``."""

        async def lost(e: BaseException) -> None:
            self.health.failed(f"{type(e).__name__}: {e}")
            if on_lost is not None:
                await on_lost(e)
            await self.mark_stale()

        def up() -> None:
            self.health.connected = True

        self.session = Session(
            self.name, max_s=max_s, first_s=first_s, errors=errors, log=logging.getLogger("genba.connectors"),
            on_connected=up,
        )  # fmt: skip
        self.health.link = self.session
        try:
            await self.session.run(serve, lost)
        finally:
            self.health.connected = False

    def may_write(self, path: str) -> bool:
        """Whether ``[[connector]] writable`` names the tag ``path``."""
        return any(matches(f, path) for f in self.writable)

    @property
    def stale(self) -> frozenset[int]:
        """Tags of this connector whose last value no longer holds (marked stale)."""
        return frozenset(self._stale)

    async def mark_stale(
        self, tag_ids: Iterable[int] | None = None, *, at_ns: int | None = None
    ) -> int:
        """Say that the values of ``tag_ids`` (default: every tag this connector declared)
        no longer hold — the source is gone (link lost, a Sparkplug death, a heartbeat
        timeout, the node stopping). Each gets a stale mark: a BAD sample with no value, at
        ``at_ns`` (default now), stored like any sample, so KPIs count the time after it as
        unknown and screens show it stale until the tag's next good sample. Tags already
        stale are left alone; returns how many were marked."""
        ids = sorted((self._owned if tag_ids is None else set(tag_ids)) - self._stale)
        if not ids:
            return 0
        self._stale.update(ids)
        at = self.clock.now_ns() if at_ns is None else at_ns
        await self.bus.publish(SampleBatch.stale_marks(ids, at))
        self.health.stale_tags = len(self._stale)
        return len(ids)

    def reject(self, reason: str, *, topic: str = "", payload: bytes = b"") -> None:
        """Record input this connector cannot use (a dead letter); the connector carries on."""
        self.health.dead_letters += 1
        self.health.last_error = reason
        self.dead_letters.add(
            self.name, reason, topic=topic, payload=payload, ts_ns=self.clock.now_ns()
        )

    async def publish(self, batch: SampleBatch | None, *, durable: bool = False) -> None:
        """Put ``batch`` on the bus; returns once the historian holds it in its queue or,
        with ``durable``, once it is committed to the store (or its on-disk spool): what a
        connector may acknowledge to its source. ``None`` (nothing gathered, as
        :meth:`Pending.take` says it) does nothing."""
        if batch is None:
            return
        if self._stale:  # a good sample makes its tag fresh again
            fresh = np.unique(batch.tag_ids[batch.quality < Quality.BAD]).tolist()
            self._stale.difference_update(fresh)
            self.health.stale_tags = len(self._stale)
        if durable and self.publish_durable is not None:
            await self.publish_durable(batch)
        else:
            await self.bus.publish(batch)
        self.health.samples += len(batch)
        self.health.batches += 1
        self.health.last_message_ns = self.clock.now_ns()


class Connector(Protocol):
    """A southbound connector: built from its settings, then ``run`` until cancelled."""

    kind: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        """Build the connector; raise ConfigError if its settings do not fit the node."""
        ...

    async def run(self) -> None:
        """Move data onto the bus until cancelled; reconnect on its own after failures."""
        ...

    async def write(self, path: str, value: float) -> float | None:
        """Write ``value`` to the device behind the tag ``path``; return the value read back
        from the device where the connector can read it at once, else ``None`` (the node then
        waits for the tag's next sample). Raises :class:`~genba.errors.NotConnectedError`
        without a link, :class:`~genba.errors.WriteRejectedError` when the tag is not one it
        can write or the device refuses the value. The node bounds it by ``write_timeout_s``."""
        ...


def create_connector(
    index: int,
    settings: ConnectorSettings,
    *,
    config: GenbaConfig,
    bus: Bus,
    clock: Clock,
    dead_letters: DeadLetters | None = None,
    publish_durable: Callable[[SampleBatch], Awaitable[None]] | None = None,
    owners: dict[TagId, str] | None = None,
) -> tuple[Connector, ConnectorContext]:
    """Build the ``index``-th ``[[connector]]`` through the ``genba.connectors`` plugins."""
    try:
        cls = plugins.load(plugins.CONNECTORS, settings.kind)
    except KeyError as e:
        raise ConfigError(f"connector[{index}].kind: {e.args[0]}") from None
    name = settings.name or f"{settings.kind}-{index}"
    health = ConnectorHealth(name=name, kind=settings.kind)
    ctx = ConnectorContext(
        name=name,
        config=config,
        bus=bus,
        clock=clock,
        health=health,
        dead_letters=dead_letters or DeadLetters(None),
        publish_durable=publish_durable,
        stale_after_s=settings.stale_after_s,
        max_tags=settings.max_tags,
        writable=tuple(settings.writable),
        write_timeout_s=settings.write_timeout_s,
        owners={} if owners is None else owners,
    )
    options = cls.Settings.model_validate(settings.options())
    connector: Connector = cls.from_settings(options, ctx)
    return connector, ctx

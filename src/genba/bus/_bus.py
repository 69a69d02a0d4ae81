"""In-process asyncio bus carrying columnar sample batches and events.

Every sample's topic is its tag's unified-namespace path; an event has a topic of its own.
A subscriber names an MQTT-style pattern and gets the matching rows of each batch (a
vectorised lookup, no per-sample Python) and the matching events.

Backpressure is explicit. Each subscription holds at most ``max_samples`` queued samples:

* ``Overflow.BLOCK`` (the historian): ``publish`` waits until the subscriber made room, so a
  slow store slows the connectors instead of growing memory.
* ``Overflow.DROP_OLDEST`` (live views): the oldest queued items are dropped, counted in
  :class:`SubscriptionStats`, and logged on the ``genba.bus`` logger.

>>> import asyncio
>>> from genba.tags import TagRegistry
>>> from genba.types import SampleBatch, TagSpec
>>> async def demo():
...     reg = TagRegistry()
...     a, b = reg.ensure([TagSpec("s/a/l/m/temp"), TagSpec("s/a/l/m/speed")])
...     bus = Bus(reg)
...     sub = bus.subscribe("s/+/l/m/temp", name="doc")
...     await bus.publish(SampleBatch.from_columns(tag_ids=[a.id, b.id], ts_ns=[1, 1], values=[20.5, 3.0]))
...     bus.close()
...     return [item.values.tolist() async for item in sub]
>>> asyncio.run(demo())
[[20.5]]
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from genba.errors import BusClosedError
from genba.paths import check_pattern, matches
from genba.tags import TagRegistry
from genba.types import Event, SampleBatch

log = logging.getLogger("genba.bus")

Item = SampleBatch | Event

_DROP_LOG_INTERVAL_S = 10.0


class Overflow(enum.Enum):
    """What a full subscription does with the next item."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    name: str
    pattern: str
    overflow: str
    max_samples: int
    queued_samples: int
    delivered_samples: int
    dropped_samples: int


@dataclass(frozen=True, slots=True)
class BusStats:
    published_samples: int
    published_batches: int
    published_events: int
    subscriptions: list[SubscriptionStats]


def _size(item: Item) -> int:
    return len(item) if isinstance(item, SampleBatch) else 1


class Subscription:
    """A bounded queue of what matches one pattern. Iterate it, or :meth:`drain` it."""

    def __init__(
        self,
        bus: Bus,
        pattern: str,
        *,
        name: str,
        max_samples: int,
        overflow: Overflow,
        events_only: bool = False,
    ) -> None:
        if max_samples < 1:
            raise ValueError(f"Subscription {name!r}: max_samples must be >= 1, got {max_samples}")
        self.pattern = check_pattern(pattern)
        self.name = name
        self.max_samples = max_samples
        self.overflow = overflow
        self.events_only = events_only
        self._bus = bus
        self._items: collections.deque[Item] = collections.deque()
        self._queued = 0
        self._delivered = 0
        self._dropped = 0
        self._last_drop_log = 0.0
        self._closed = False
        self._changed = asyncio.Condition()
        self._wake_task: asyncio.Task[None] | None = None

    # -- publisher side -------------------------------------------------------------
    def _filter(self, item: Item) -> Item | None:
        if isinstance(item, Event):
            return item if matches(self.pattern, item.topic) else None
        if self.events_only:
            return None
        if self.pattern == "#":
            return item
        rows = self._bus.registry.match_mask(self.pattern)[item.tag_ids]
        if rows.all():
            return item
        return item.select(rows) if rows.any() else None

    async def _offer(self, item: Item) -> None:
        picked = self._filter(item)
        if picked is None or self._closed:
            return
        size = _size(picked)
        async with self._changed:
            if self.overflow is Overflow.BLOCK:
                # An item larger than the bound still goes through once the queue is empty.
                await self._changed.wait_for(
                    lambda: (
                        self._closed or not self._items or self._queued + size <= self.max_samples
                    )
                )
                if self._closed:
                    return
            else:
                dropped = 0
                while self._items and self._queued + size > self.max_samples:
                    old = self._items.popleft()
                    self._queued -= _size(old)
                    dropped += _size(old)
                if dropped:
                    self._note_drop(dropped)
            self._items.append(picked)
            self._queued += size
            self._changed.notify_all()

    def _note_drop(self, n: int) -> None:
        self._dropped += n
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning(
                "subscription %r (pattern %r) is full at %d samples and dropped the oldest: "
                "%d samples dropped so far. The subscriber is slower than the data.",
                self.name,
                self.pattern,
                self.max_samples,
                self._dropped,
            )

    # -- subscriber side ------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """Closed and nothing left to read."""
        return self._closed and not self._items

    async def drain(self, *, timeout: float | None = None) -> list[Item]:  # noqa: ASYNC109 - a batching consumer needs "up to N s", not a cancel scope
        """Wait for at least one item (or ``timeout`` seconds, or close); take all queued.

        Returns an empty list on timeout or when the subscription is finished.
        """
        async with self._changed:
            if not self._items and not self._closed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._items) or self._closed), timeout
                    )
                except TimeoutError:
                    return []
            items = list(self._items)
            self._items.clear()
            self._delivered += self._queued
            self._queued = 0
            self._changed.notify_all()
            return items

    async def __aiter__(self) -> AsyncIterator[Item]:
        while not self.finished:
            for item in await self.drain():
                yield item

    def close(self) -> None:
        """Stop receiving; what is queued can still be drained."""
        self._closed = True
        self._bus._unsubscribe(self)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # closed outside the loop: no reader can be waiting
            return
        self._wake_task = loop.create_task(self._wake(), name=f"wake-{self.name}")

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def stats(self) -> SubscriptionStats:
        return SubscriptionStats(
            name=self.name,
            pattern=self.pattern,
            overflow=self.overflow.value,
            max_samples=self.max_samples,
            queued_samples=self._queued,
            delivered_samples=self._delivered,
            dropped_samples=self._dropped,
        )

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus:
    """Fan-out of sample batches and events to bounded subscriptions."""

    def __init__(self, registry: TagRegistry) -> None:
        self.registry = registry
        self._subs: list[Subscription] = []
        self._closed = False
        self._samples = 0
        self._batches = 0
        self._events = 0

    def subscribe(
        self,
        pattern: str = "#",
        *,
        name: str,
        max_samples: int = 1_000_000,
        overflow: Overflow = Overflow.BLOCK,
        events_only: bool = False,
    ) -> Subscription:
        """A new subscription to what matches ``pattern`` (raises PatternError if malformed);
        with ``events_only`` it gets events (and commands) only, no samples."""
        if self._closed:
            raise BusClosedError(f"Cannot subscribe {name!r}: the bus is closed.")
        sub = Subscription(
            self,
            pattern,
            name=name,
            max_samples=max_samples,
            overflow=overflow,
            events_only=events_only,
        )
        self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    async def publish(self, item: Item) -> None:
        """Hand ``item`` to every matching subscription; waits while a BLOCK one is full.

        When this returns, every subscriber that must not lose data holds the item.
        """
        if self._closed:
            raise BusClosedError("Cannot publish: the bus is closed (the node is shutting down).")
        if isinstance(item, SampleBatch):
            if not len(item):
                return
            self._samples += len(item)
            self._batches += 1
        else:
            self._events += 1
        for sub in list(self._subs):
            await sub._offer(item)

    def close(self) -> None:
        """No more publishing; subscribers drain what they hold, then their iteration ends."""
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> BusStats:
        return BusStats(
            published_samples=self._samples,
            published_batches=self._batches,
            published_events=self._events,
            subscriptions=[s.stats() for s in self._subs],
        )

"""The historian writer: drains the bus into the store in large batches.

It subscribes to everything with ``Overflow.BLOCK``, so when the store is slower than the
connectors, connectors wait; nothing is dropped. Batches are coalesced for as long as the last
write took (at least ``_MIN_COALESCE_S``): the flush adapts to load — a trickle is written
within milliseconds, a flood in batches large enough that committing takes at most about half
the writer's time. Two bounds hold whatever the load: ``flush_max_samples`` waiting, or the
oldest having waited ``flush_interval_ms``. A sender waiting for durability
(:meth:`HistorianWriter.durable`) is written at once: a group commit of all that is queued, so
an acknowledgement costs one commit, not a flush interval.

What the store already holds exactly is dropped before each write (:mod:`genba.historian._dedup`):
redelivery after a crash, a replayed spool or an import run twice stores nothing twice.

When the store fails a write, the batch goes to the store-and-forward spool on disk
(:mod:`genba.historian._spool`) and the writer keeps draining the bus; a recovery task writes the
backlog into the store, oldest first, once it answers again, and later batches queue behind it
so order is kept. When the spool cannot take a batch either (it is full, or on the same full,
read-only or vanished disk as the store) the batch is held in memory, up to
``buffer_max_samples``; past that the writer waits, the bus fills and connectors wait. While
anything is held in memory the writer is not :attr:`~HistorianWriter.accepting`: nothing in
memory is durable, so senders that need an acknowledgement are refused (HTTP 503) or kept
waiting (MQTT QoS 1: unacknowledged, the broker keeps the messages) until the backlog is written.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from genba.bus import Bus, Overflow
from genba.component import ComponentContext, Shutdown
from genba.config import Section, StoreSettings
from genba.errors import NotAcceptingError
from genba.historian._dedup import Redeliveries
from genba.historian._records import RecordLog
from genba.historian._spool import Spool
from genba.historian._store import Store
from genba.retry import Session
from genba.types import Command, Event, SampleBatch, Tag

log = logging.getLogger("genba.historian")


_MIN_COALESCE_S = 0.005
"""Shortest wait for more samples before a write: a commit has a fixed cost, not worth paying
for a handful of samples at a time."""


@dataclass(slots=True)
class WriterStats:
    stored_samples: int = 0
    flushes: int = 0
    pending_samples: int = 0
    last_flush_ms: float = 0.0
    errors: int = 0
    last_error: str = ""
    spooled_samples: int = 0
    spool_bytes: int = 0
    held_samples: int = 0
    duplicates_dropped: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "stored_samples": self.stored_samples,
            "flushes": self.flushes,
            "pending_samples": self.pending_samples,
            "last_flush_ms": round(self.last_flush_ms, 3),
            "errors": self.errors,
            "last_error": self.last_error,
            "spooled_samples": self.spooled_samples,
            "spool_bytes": self.spool_bytes,
            "held_samples": self.held_samples,
            "duplicates_dropped": self.duplicates_dropped,
        }


def _record_of(event: Event) -> tuple[str, str, dict[str, Any], int]:
    """(kind, key, body, time) of the record that keeps a bus event."""
    if isinstance(event, Command):
        body = {"value": event.value, "origin": event.origin, "id": event.id}
        return "command", event.topic, body, event.ts_ns
    return "event", event.topic, {"kind": event.kind, "data": dict(event.data)}, event.ts_ns


class HistorianWriter:
    """Moves every sample from the bus into the store; see the module docstring.

    The node's first component (``store`` in ``/api/health``): its settings are the core
    ``[store]`` section, the store it writes is the node's."""

    name: ClassVar[str] = "store"
    order: ClassVar[int] = 0
    sections: ClassVar[tuple[Section[Any], ...]] = ()
    shutdown: ClassVar[Shutdown] = Shutdown.DRAIN

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self:
        writer = cls(
            ctx.bus,
            ctx.store,
            ctx.config.store,
            spool_dir=ctx.data_dir / "spool",
            records=ctx.records,
        )
        ctx.registry.on_new_tags(writer.note_tags)
        return writer

    def __init__(
        self,
        bus: Bus,
        store: Store,
        settings: StoreSettings,
        *,
        spool_dir: Path | None = None,
        records: RecordLog | None = None,
    ) -> None:
        self.kind = settings.kind
        self._records = records
        self._store = store
        self._spool = (
            Spool(spool_dir, max_bytes=settings.spool_max_mb * 1024 * 1024)
            if spool_dir is not None and settings.spool_max_mb > 0
            else None
        )
        self._recovery: asyncio.Task[None] | None = None
        self._held: deque[SampleBatch] = deque()  # not durable: neither store nor spool took it
        self._held_max = settings.buffer_max_samples
        self._warned_full = False
        self.problem = ""
        """Why the store cannot be written now ("" while it can)."""
        self._logged: dict[str, float] = {}  # problems logged, and when
        self._interval_s = settings.flush_interval_ms / 1000
        self._max = settings.flush_max_samples
        self._sub = bus.subscribe(
            "#", name="historian", max_samples=settings.queue_max_samples, overflow=Overflow.BLOCK
        )
        self.stats = WriterStats()
        self._new_tags: dict[int, Tag] = {}
        self.durable_samples = 0  # taken from the bus, in order, and now in the store or spool
        self._durable_changed = asyncio.Condition()
        self._waiting = 0  # senders inside durable(): flush as soon as their samples arrive
        self._tags_lock = threading.Lock()
        self._seen = Redeliveries(store)

    def note_tags(self, tags: list[Tag]) -> None:
        """Tags new to the registry: saved to the catalogue with the next write, in the
        writer's thread, so declaring thousands of new topics never blocks the event loop."""
        with self._tags_lock:
            for t in tags:
                self._new_tags[t.id] = t

    def _write(self, batch: SampleBatch) -> None:
        """Save the new tags, then the samples (in a worker thread)."""
        if self._new_tags:
            with self._tags_lock:
                tags = list(self._new_tags.values())
            self._store.save_tags(tags)
            with self._tags_lock:
                for t in tags:
                    if self._new_tags.get(t.id) is t:  # not changed again meanwhile
                        del self._new_tags[t.id]
        if len(batch):
            batch = self._seen.filter(batch)
            self.stats.duplicates_dropped = self._seen.dropped
        if len(batch):
            try:
                self._store.append(batch)
            except Exception:
                self._seen.forget()  # it may have committed: learn again what the store holds
                raise
            self._seen.note(batch)

    @property
    def accepting(self) -> bool:
        """Whether what senders publish now can become durable: nothing waits in memory."""
        return not self._held

    def check_accepting(self) -> None:
        """Raise :class:`NotAcceptingError` (an HTTP 503) unless :attr:`accepting`."""
        if not self.accepting:
            raise self._refusal()

    def _refusal(self) -> NotAcceptingError:
        return NotAcceptingError(self.problem or "the store is not answering")

    def health(self) -> dict[str, Any]:
        return {"kind": self.kind, "accepting": self.accepting} | self.stats.as_dict()

    def problems(self) -> list[str]:
        if not self.accepting:
            return [
                f"storage: the store and the spool take nothing ({self.problem}); "
                f"{self.stats.held_samples} samples held in memory, nothing acknowledged "
                "until they are written: free disk space, or mount the data dir read-write"
            ]
        if self.problem:
            return [f"storage: the store failed ({self.problem}); spooling to disk"]
        return []

    async def run(self) -> None:
        """Write until the bus is closed and everything it held is stored (or spooled)."""
        if self._spool is not None and self._spool.files:
            log.warning("replaying %d spooled batches left by the last run", self._spool.files)
            self._start_recovery()
        try:
            await self._drain()
            if self._new_tags:  # tags declared after the last samples
                try:
                    await asyncio.to_thread(self._write, SampleBatch.empty())
                except Exception as e:
                    log.error("could not save %d new tags: %s", len(self._new_tags), e)
        finally:
            if self._recovery is not None:
                try:  # the store may be back: give the backlog a moment before stopping
                    await asyncio.wait_for(asyncio.shield(self._recovery), 10)
                except TimeoutError:
                    self._recovery.cancel()
                    if self._spool is not None and self._spool.files:
                        log.warning("stopping with %d batches still spooled; replayed at "
                                    "next start", self._spool.files)  # fmt: skip
                    if self._held:
                        log.error("stopping with %d samples held in memory that neither the "
                                  "store nor the spool took (%s): they are lost",
                                  self.stats.held_samples, self.problem)  # fmt: skip

    def _coalesce_s(self) -> float:
        """How long the first pending sample waits for more: as long as the last write took
        (so writing takes at most about half the time), within [_MIN_COALESCE_S, interval]."""
        return min(self._interval_s, max(_MIN_COALESCE_S, self.stats.last_flush_ms / 1000))

    async def _drain(self) -> None:
        pending: list[SampleBatch] = []
        deadline = 0.0
        while True:
            timeout = self._interval_s if not pending else max(deadline - time.monotonic(), 0.0)
            for item in await self._sub.drain(timeout=timeout):
                if isinstance(item, SampleBatch):
                    if not pending:
                        deadline = time.monotonic() + self._coalesce_s()
                    pending.append(item)
                    self.stats.pending_samples += len(item)
                elif self._records is not None:  # an Event: kept in the record log
                    self._records.put(*_record_of(item))
            due = (
                self.stats.pending_samples >= self._max
                or time.monotonic() >= deadline
                or self._waiting > 0
            )
            if pending and (due or self._sub.finished):
                await self._flush(SampleBatch.concat(pending))
                pending.clear()
            if self._sub.finished and not pending:
                return

    async def _flush(self, batch: SampleBatch) -> None:
        if not self._held and not (self._spool is not None and self._spool.files):
            try:
                await self._append(batch)
                self.problem = ""
                return
            except Exception as e:  # the store failed: keep the batch, carry on draining
                self._failed(e, f"{len(batch)} samples kept for later")
        await self._behind(batch)  # behind a backlog: keep the order

    async def _behind(self, batch: SampleBatch) -> None:
        """Queue ``batch`` after the backlog: on the spool if it takes it, else in memory."""
        if self._held or not await self._to_spool(batch):
            await self._hold(batch)
        self._start_recovery()

    async def _append(self, batch: SampleBatch) -> None:
        t0 = time.perf_counter()
        await asyncio.to_thread(self._write, batch)
        self.stats.last_flush_ms = (time.perf_counter() - t0) * 1000
        self.stats.flushes += 1
        self.stats.stored_samples += len(batch)
        self.stats.pending_samples -= len(batch)
        await self._now_durable(len(batch))

    async def _now_durable(self, n: int) -> None:
        self.durable_samples += n
        async with self._durable_changed:
            self._durable_changed.notify_all()

    async def wait_durable(self, position: int, *, refuse: bool = False) -> None:
        """Return once the first ``position`` samples the bus carried are durable: committed
        to the store, or written to the on-disk spool. With ``refuse``, raise
        :class:`NotAcceptingError` instead of waiting while the writer is not accepting."""
        async with self._durable_changed:
            await self._durable_changed.wait_for(
                lambda: self.durable_samples >= position or (refuse and not self.accepting)
            )
        if self.durable_samples < position:
            raise self._refusal()

    @asynccontextmanager
    async def durable(self) -> AsyncIterator[None]:
        """Inside this, samples put on the bus are written at once rather than at the next
        flush interval (enter before publishing; wait with :meth:`wait_durable`)."""
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1

    def _failed(self, e: BaseException, doing: str, *, quiet: bool = False) -> None:
        self.stats.errors += 1
        self.problem = self.stats.last_error = f"{type(e).__name__}: {e}"
        now = time.monotonic()
        if not quiet and (
            now - self._logged.get(self.problem, float("-inf")) >= 60
        ):  # once a minute, not each retry
            if len(self._logged) > 100:
                self._logged.clear()
            self._logged[self.problem] = now
            log.error("historian write failed (%s): %s", doing, e)

    async def _to_spool(self, batch: SampleBatch) -> bool:
        """Write ``batch`` to the spool; False when there is none, it is full or it fails."""
        spool = self._spool
        if spool is None:
            return False
        if spool.full:
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "store-and-forward spool is full (%d MB in %d batches): holding samples in "
                    "memory; raise [store] spool_max_mb to hold more",
                    spool.bytes // 2**20, spool.files,
                )  # fmt: skip
            return False
        self._warned_full = False
        try:
            await asyncio.to_thread(spool.put, batch)
        except OSError as e:  # the spool's disk is full, read-only or gone too
            self._failed(e, f"spooling {len(batch)} samples failed too")
            return False
        self.stats.pending_samples -= len(batch)
        self.stats.spooled_samples += len(batch)
        self.stats.spool_bytes = spool.bytes
        await self._now_durable(len(batch))
        return True

    async def _hold(self, batch: SampleBatch) -> None:
        """Keep ``batch`` in memory behind the backlog; wait while the buffer is full (the bus
        then fills and connectors wait)."""
        async with self._durable_changed:  # the recovery notifies as it writes the backlog
            await self._durable_changed.wait_for(
                lambda: not self._held or self.stats.held_samples + len(batch) <= self._held_max
            )
        if not self._held:
            log.error("the store and the spool take nothing (%s): holding samples in memory "
                      "(at most [store] buffer_max_samples = %d) and acknowledging nothing "
                      "until they are written", self.problem, self._held_max)  # fmt: skip
        self._held.append(batch)
        self.stats.held_samples += len(batch)
        async with self._durable_changed:  # senders waiting for durability learn it now
            self._durable_changed.notify_all()

    def _start_recovery(self) -> None:
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover(), name="historian-recovery")

    async def _recover(self) -> None:
        """Write the backlog into the store, oldest first (the spool, then what memory
        holds), as a :class:`~genba.retry.Session` with the store: a failed write is a lost
        link (backoff, then the same batch again); meanwhile what memory holds moves onto the
        spool when that takes it."""
        link = Session(
            "historian backlog",
            max_s=5.0,
            first_s=0.2,
            errors=(Exception,),
            log=log,
            log_every_s=60,
            retry_word="writing it again",
        )
        await link.run(self._write_backlog, self._backlog_failed)
        log.info("historian backlog written: storing live again")

    async def _write_backlog(self, link: Session) -> None:
        while (self._spool is not None and self._spool.files) or self._held:
            await self._recover_one()
            link.connected()
            self.problem = ""

    async def _backlog_failed(self, e: BaseException) -> None:
        """The store is still down: count it, and move what memory holds onto the spool
        (durable once spooled; in order, it is next) while the spool takes it."""
        self._failed(e, "writing the backlog", quiet=True)  # the session logs it
        while self._held and self._spool is not None and not self._spool.full:
            head = self._held.popleft()
            self.stats.held_samples -= len(head)
            if not await self._to_spool(head):
                self._held.appendleft(head)
                self.stats.held_samples += len(head)
                return

    async def _recover_one(self) -> None:
        spool = self._spool
        if spool is not None and spool.files:
            head = await asyncio.to_thread(spool.peek)
            if head is None:
                return
            path, batch = head
            await asyncio.to_thread(self._write, batch)
            spool.pop(path)
            self.stats.stored_samples += len(batch)
            self.stats.spooled_samples = max(self.stats.spooled_samples - len(batch), 0)
            self.stats.spool_bytes = spool.bytes
            return
        batch = self._held[0]
        await asyncio.to_thread(self._write, batch)
        self._held.popleft()
        self.stats.held_samples -= len(batch)
        self.stats.flushes += 1
        self.stats.stored_samples += len(batch)
        self.stats.pending_samples -= len(batch)
        await self._now_durable(len(batch))

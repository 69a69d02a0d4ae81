"""The historian writer: drains the bus into the store in large batches.

It subscribes to everything with ``Overflow.BLOCK``, so when the store is slower than the
connectors, connectors wait; nothing is dropped. Batches are coalesced until
``flush_max_samples`` are waiting or the oldest has waited ``flush_interval_ms`` — or at once
when a sender waits for durability (:meth:`HistorianWriter.durable`): a group commit of all that
is queued, so an acknowledgement costs one commit, not a flush interval.

What the store already holds exactly is dropped before each write (:mod:`genba.node._dedup`):
redelivery after a crash, a replayed spool or an import run twice stores nothing twice.

When the store fails a write, the batch goes to the store-and-forward spool on disk
(:mod:`genba.node._spool`) and the writer keeps draining the bus; a replay task writes the
spool into the store, oldest first, once it answers again, and later batches queue behind it so
order is kept. The spool is bounded (``spool_max_mb``); when it is full the writer waits, the
bus fills, and connectors wait: nothing is dropped. Without a spool a failed write is retried
with backoff, keeping the samples in memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from genba.bus import Bus, Overflow
from genba.node._dedup import Redeliveries
from genba.node._spool import Spool
from genba.store import Store, StoreSettings
from genba.types import SampleBatch, Tag

log = logging.getLogger("genba.historian")


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
            "duplicates_dropped": self.duplicates_dropped,
        }


class HistorianWriter:
    """Moves every sample from the bus into the store; see the module docstring."""

    def __init__(
        self, bus: Bus, store: Store, settings: StoreSettings, *, spool_dir: Path | None = None
    ) -> None:
        self._store = store
        self._spool = (
            Spool(spool_dir, max_bytes=settings.spool_max_mb * 1024 * 1024)
            if spool_dir is not None and settings.spool_max_mb > 0
            else None
        )
        self._replayer: asyncio.Task[None] | None = None
        self._warned_full = False
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
            self._store.append(batch)
            self._seen.note(batch)

    async def run(self) -> None:
        """Write until the bus is closed and everything it held is stored (or spooled)."""
        if self._spool is not None and self._spool.files:
            log.warning("replaying %d spooled batches left by the last run", self._spool.files)
            self._start_replay()
        try:
            await self._drain()
            if self._new_tags:  # tags declared after the last samples
                try:
                    await asyncio.to_thread(self._write, SampleBatch.empty())
                except Exception as e:
                    log.error("could not save %d new tags: %s", len(self._new_tags), e)
        finally:
            if self._replayer is not None:
                try:  # the store may be back: give the replay a moment before stopping
                    await asyncio.wait_for(asyncio.shield(self._replayer), 10)
                except TimeoutError:
                    self._replayer.cancel()
                    log.warning("stopping with %d batches still spooled; replayed at next start",
                                self._spool.files if self._spool else 0)  # fmt: skip

    async def _drain(self) -> None:
        pending: list[SampleBatch] = []
        deadline = 0.0
        while True:
            timeout = self._interval_s if not pending else max(deadline - time.monotonic(), 0.0)
            for item in await self._sub.drain(timeout=timeout):
                if isinstance(item, SampleBatch):
                    if not pending:
                        deadline = time.monotonic() + self._interval_s
                    pending.append(item)
                    self.stats.pending_samples += len(item)
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
        if self._spool is not None:
            if self._spool.files:  # behind a spool: keep the order
                await self._to_spool(batch)
                return
            try:
                await self._append(batch)
            except Exception as e:  # the store failed: keep the batch on disk, carry on
                self._failed(e, len(batch), "spooling")
                await self._to_spool(batch)
            return
        backoff = 0.1
        while True:
            try:
                await self._append(batch)
                return
            except Exception as e:  # keep the samples, tell, retry: a store can come back
                self._failed(e, len(batch), "retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

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

    async def wait_durable(self, position: int) -> None:
        """Return once the first ``position`` samples the bus carried are durable: committed
        to the store, or written to the on-disk spool."""
        async with self._durable_changed:
            await self._durable_changed.wait_for(lambda: self.durable_samples >= position)

    @asynccontextmanager
    async def durable(self) -> AsyncIterator[None]:
        """Inside this, samples put on the bus are written at once rather than at the next
        flush interval (enter before publishing; wait with :meth:`wait_durable`)."""
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1

    def _failed(self, e: Exception, n: int, doing: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(e).__name__}: {e}"
        log.error("historian write of %d samples failed (%s): %s", n, doing, e)

    async def _to_spool(self, batch: SampleBatch) -> None:
        spool = self._spool
        if spool is None:
            raise RuntimeError("no spool configured")
        while spool.full:
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "store-and-forward spool is full (%d MB in %d batches): connectors now wait "
                    "until the store is back; raise [store] spool_max_mb to hold more",
                    spool.bytes // 2**20, spool.files,
                )  # fmt: skip
            await asyncio.sleep(0.2)
        self._warned_full = False
        await asyncio.to_thread(spool.put, batch)
        self.stats.pending_samples -= len(batch)
        self.stats.spooled_samples += len(batch)
        self.stats.spool_bytes = spool.bytes
        await self._now_durable(len(batch))
        self._start_replay()  # the last replay may have ended while this batch waited

    def _start_replay(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay(), name="historian-replay")

    async def _replay(self) -> None:
        """Write the spool into the store, oldest first, retrying until the store answers."""
        spool = self._spool
        backoff = 0.2
        while spool is not None and spool.files:
            head = await asyncio.to_thread(spool.peek)
            if head is None:
                return
            path, batch = head
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception as e:  # still down: wait and try the same batch again
                self._failed(e, len(batch), "replaying the spool")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            spool.pop(path)
            self.stats.stored_samples += len(batch)
            self.stats.spooled_samples = max(self.stats.spooled_samples - len(batch), 0)
            self.stats.spool_bytes = spool.bytes

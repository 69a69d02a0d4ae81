"""The historian writer: drains the bus into the store in large batches.

It subscribes to everything with ``Overflow.BLOCK``, so when the store is slower than the
connectors, connectors wait; nothing is dropped. Batches are coalesced until
``flush_max_samples`` are waiting or the oldest has waited ``flush_interval_ms``. A failed
write is retried with backoff, keeping the samples.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from genba.bus import Bus, Overflow
from genba.store import Store, StoreSettings
from genba.types import SampleBatch

log = logging.getLogger("genba.historian")


@dataclass(slots=True)
class WriterStats:
    stored_samples: int = 0
    flushes: int = 0
    pending_samples: int = 0
    last_flush_ms: float = 0.0
    errors: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "stored_samples": self.stored_samples,
            "flushes": self.flushes,
            "pending_samples": self.pending_samples,
            "last_flush_ms": round(self.last_flush_ms, 3),
            "errors": self.errors,
            "last_error": self.last_error,
        }


class HistorianWriter:
    """Moves every sample from the bus into the store; see the module docstring."""

    def __init__(self, bus: Bus, store: Store, settings: StoreSettings) -> None:
        self._store = store
        self._interval_s = settings.flush_interval_ms / 1000
        self._max = settings.flush_max_samples
        self._sub = bus.subscribe(
            "#", name="historian", max_samples=settings.queue_max_samples, overflow=Overflow.BLOCK
        )
        self.stats = WriterStats()

    async def run(self) -> None:
        """Write until the bus is closed and everything it held is stored."""
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
            due = self.stats.pending_samples >= self._max or time.monotonic() >= deadline
            if pending and (due or self._sub.finished):
                await self._flush(SampleBatch.concat(pending))
                pending.clear()
            if self._sub.finished and not pending:
                return

    async def _flush(self, batch: SampleBatch) -> None:
        backoff = 0.1
        while True:
            t0 = time.perf_counter()
            try:
                await asyncio.to_thread(self._store.append, batch)
            except Exception as e:  # keep the samples, tell, retry: a store can come back
                self.stats.errors += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.error("historian write of %d samples failed, retrying: %s", len(batch), e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.stats.last_flush_ms = (time.perf_counter() - t0) * 1000
            self.stats.flushes += 1
            self.stats.stored_samples += len(batch)
            self.stats.pending_samples -= len(batch)
            return

"""The node's side of the store's record log (:class:`~genba.historian.Record`).

Whatever the node records beside samples — bus events, alarm transitions, dead letters —
is handed to :meth:`RecordLog.put`, which never blocks and never raises: the record waits in
memory and is appended to the store with others in one transaction, from a worker thread,
every ``FLUSH_S`` (or at once when ``FLUSH_AT`` wait). While the store refuses writes, records
wait (up to ``max_pending``; past that the oldest are dropped, counted and logged) and are
written once it answers. Reads (:meth:`read`) see the stored records and those still waiting.

Alarm rules added through the API are written at once (:meth:`append_now`): the request that
adds one is answered only when it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from genba.historian._store import Record, Store, TimeRange
from genba.retry import Backoff

log = logging.getLogger("genba.records")
FLUSH_S = 0.2
FLUSH_AT = 1000
MAX_PENDING = 100_000


class RecordLog:
    """Queues records for the store; see the module docstring."""

    def __init__(self, store: Store, *, max_pending: int = MAX_PENDING) -> None:
        self.store = store
        self._pending: deque[Record] = deque()
        self._max = max_pending
        self._wake = asyncio.Event()
        self._inflight: asyncio.Future[bool] | None = None
        self._taken_meanwhile = 0  # records of the write in flight that put() dropped
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self.last_error = ""

    def put(self, kind: str, key: str, body: dict[str, Any], ts_ns: int) -> None:
        """Queue one record for the store (see the module docstring)."""
        if len(self._pending) >= self._max:
            self._pending.popleft()
            self.dropped += 1
            if self._inflight is not None:  # it was one of those being written
                self._taken_meanwhile += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.error("record log: %d records dropped, the store takes none", self.dropped)
        self._pending.append(Record(kind, ts_ns, key, body))
        if len(self._pending) >= FLUSH_AT:
            self._wake.set()

    def append_now(self, records: list[Record]) -> list[int]:
        """Append ``records`` in the calling (worker) thread and return their numbers; raises
        :class:`~genba.errors.StoreError` when the store refuses them."""
        seqs = self.store.append_records(records)
        self.written += len(records)
        return seqs

    async def run(self) -> None:
        """Write what is queued until cancelled; then write what is left, once."""
        backoff = Backoff(max_s=30.0, first_s=FLUSH_S)
        try:
            while True:
                delay = FLUSH_S if await self.flush() else backoff.next_delay()
                if not self.last_error:
                    backoff.reset()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:  # what is left: the write in flight, then the rest
            if self._inflight is not None:
                await asyncio.shield(self._inflight)
                self._inflight = None
            await asyncio.shield(self.flush())

    async def flush(self) -> bool:
        """Write everything queued now; False when the store refused it (kept for later).

        The write runs as a task of its own, shielded: a flush cancelled while the store
        writes still takes the written records off the queue (they are never written twice)."""
        if self._inflight is None:
            if not self._pending:
                return True
            self._taken_meanwhile = 0
            self._inflight = asyncio.ensure_future(self._write(list(self._pending)))
        inflight = self._inflight
        try:
            return await asyncio.shield(inflight)
        finally:
            if inflight.done() and self._inflight is inflight:
                self._inflight = None

    async def _write(self, batch: list[Record]) -> bool:
        try:
            await asyncio.to_thread(self.store.append_records, batch)
        except Exception as e:
            self.write_errors += 1
            if not self.last_error:
                log.error("record log: the store refuses records (%s); keeping them", e)
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        for _ in range(len(batch) - min(self._taken_meanwhile, len(batch))):
            self._pending.popleft()  # the written ones; the queue's oldest may be gone already
        self.written += len(batch)
        if self.last_error:
            log.info("record log: the store takes records again")
        self.last_error = ""
        return True

    def read(
        self, kind: str, *, key: str | None = None, span: TimeRange | None = None, limit: int = 100
    ) -> list[Record]:
        """The newest ``limit`` records of ``kind`` (and ``key``, in ``span``), newest first:
        those still waiting (``seq`` 0) before the stored ones. Runs in a worker thread."""
        waiting = [
            r
            for r in reversed(tuple(self._pending))  # a copy: the loop may append meanwhile
            if r.kind == kind
            and (key is None or r.key == key)
            and (span is None or span.start_ns <= r.ts_ns < span.end_ns)
        ][:limit]
        if len(waiting) == limit:
            return waiting
        stored = self.store.records(
            kind, key=key, span=span, limit=limit - len(waiting), newest_first=True
        )
        if waiting and stored:  # a write in flight may have committed some of them meanwhile
            have = {_identity(r) for r in stored}
            waiting = [r for r in waiting if _identity(r) not in have]
        return waiting + stored

    @property
    def pending(self) -> int:
        """Records waiting for the store."""
        return len(self._pending)

    def health(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
        }


def _identity(r: Record) -> tuple[str, int, str, str]:
    """What a record is, without its sequence number (key order of the body aside)."""
    return r.kind, r.ts_ns, r.key, json.dumps(r.body, sort_keys=True)

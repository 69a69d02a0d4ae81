"""Forwarding: an edge node sends its samples to an upstream genba node, never losing them.

The forwarder follows the bus like the historian writer does. Every ``batch_ms`` it sends what
it gathered to the upstream's ``POST /api/ingest`` as one Arrow IPC stream (tag paths,
nanosecond timestamps, values, quality). When the upstream does not answer, or answers with a
server error, the batch goes to a durable spool on disk (the one the historian writer uses:
whole files only, oldest first) and later batches queue behind it, so the upstream receives
everything in order once it is back. Rows the upstream refuses as invalid are its dead letters,
not retried. The spool is bounded by ``spool_max_mb``: when it is full, newer samples are not
forwarded (counted in ``/api/health`` under ``forward``, with a warning) and the node's own
storage carries on untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
import pyarrow as pa
import pyarrow.ipc as paipc

from genba.bus import Bus, Overflow
from genba.component import ComponentContext, Shutdown
from genba.config import FORWARD, ForwardSettings, Section
from genba.historian import Spool, as_table
from genba.retry import Session
from genba.tags import TagRegistry
from genba.types import SampleBatch

log = logging.getLogger("genba.forward")
ARROW = "application/vnd.apache.arrow.stream"
SEND_MAX_SAMPLES = 200_000  # one request carries up to this much of a backlog


class UpstreamError(Exception):
    """The upstream did not take a batch; worth trying again later."""


@dataclass
class ForwardStats:
    url: str
    connected: bool = False
    sent_samples: int = 0
    refused_samples: int = 0  # rows the upstream found invalid (its dead letters)
    spooled_samples: int = 0
    spool_bytes: int = 0
    dropped_samples: int = 0  # not forwarded: the spool was full
    errors: int = 0
    last_error: str = ""
    last_sent_ms: int | None = None


def encode(batch: SampleBatch, registry: TagRegistry) -> bytes:
    """``batch`` as an Arrow IPC stream of tag path, timestamp (ns, UTC), value, quality."""
    table = as_table(batch, registry)
    sink = pa.BufferOutputStream()
    with paipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class Forwarder:
    """Sends the samples matching ``settings.pattern`` to the upstream node (``[forward]``)."""

    name: ClassVar[str] = "forward"
    order: ClassVar[int] = 70
    sections: ClassVar[tuple[Section[Any], ...]] = (FORWARD,)
    shutdown: ClassVar[Shutdown] = Shutdown.DRAIN

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        settings = ctx.config.section(FORWARD)
        if settings is None:
            return None
        return cls(settings, ctx.bus, ctx.registry, ctx.data_dir / "forward-spool")

    def __init__(
        self, settings: ForwardSettings, bus: Bus, registry: TagRegistry, spool_dir: Path
    ) -> None:
        self.s = settings
        self.registry = registry
        self.spool = Spool(spool_dir, max_bytes=settings.spool_max_mb * 1024 * 1024)
        self._sub = bus.subscribe(
            settings.pattern, name="forward", max_samples=2_000_000, overflow=Overflow.BLOCK
        )
        self.stats = ForwardStats(settings.url)
        self.stats.spool_bytes = self.spool.bytes
        self._warned_full = False
        self._http: httpx.AsyncClient | None = None
        self.link = Session(
            f"forward to {settings.url}",
            max_s=settings.retry_max_s,
            errors=(UpstreamError,),
            log=log,
            log_every_s=60,
            retry_word="sending the spool again",
        )
        """The upstream link: the spool is sent through it, with backoff while it is down."""

    async def run(self) -> None:
        """Forward until the bus is closed; what the upstream has not taken stays spooled."""
        async with httpx.AsyncClient(timeout=self.s.timeout_s) as http:
            self._http = http
            if self.spool.files:
                log.warning("forward: %d batches left spooled by the last run", self.spool.files)
            sender = asyncio.create_task(self._send_spool(), name="forward-spool")
            try:
                while not self._sub.finished:
                    items = await self._sub.drain(timeout=self.s.batch_ms / 1000)
                    batches = [i for i in items if isinstance(i, SampleBatch)]
                    if batches:
                        await self._forward(SampleBatch.concat(batches))
                deadline = time.monotonic() + 10  # stopping: hand over the backlog if we can
                while self.spool.files and self.stats.connected and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a file count
                    await asyncio.sleep(0.05)
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)

    async def _forward(self, batch: SampleBatch) -> None:
        if not self.spool.files:
            try:
                await self._post(batch)
                self.link.connected()
                return
            except UpstreamError:
                pass  # counted in _post; keep it on disk
        self._to_spool(batch)

    def _to_spool(self, batch: SampleBatch) -> None:
        if self.spool.full:
            self.stats.dropped_samples += len(batch)
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "forward: spool full (spool_max_mb = %d); samples for %s are not forwarded "
                    "until the upstream takes the backlog; local storage is unaffected",
                    self.s.spool_max_mb, self.s.url,
                )  # fmt: skip
            return
        self._warned_full = False
        self.spool.put(batch)
        self.stats.spooled_samples += len(batch)
        self.stats.spool_bytes = self.spool.bytes

    async def _send_spool(self) -> None:
        """Send the spool to the upstream, oldest first, through :attr:`link` (a failed post
        is a lost link: backoff, then the same head again)."""
        await self.link.run(self._serve_spool)

    async def _serve_spool(self, link: Session) -> None:
        while True:
            head = (
                await asyncio.to_thread(self.spool.peek_many, SEND_MAX_SAMPLES)
                if self.spool.files
                else []
            )
            if not head:
                await asyncio.sleep(self.s.batch_ms / 1000)
                continue
            batch = SampleBatch.concat([b for _, b in head])  # the backlog, many files a request
            await self._post(batch)
            link.connected()
            for path, _ in head:
                self.spool.pop(path)
            self.stats.spooled_samples = max(self.stats.spooled_samples - len(batch), 0)
            self.stats.spool_bytes = self.spool.bytes

    async def _post(self, batch: SampleBatch) -> None:
        if self._http is None:
            raise UpstreamError("not started")
        body = await asyncio.to_thread(encode, batch, self.registry)
        try:
            r = await self._http.post(
                f"{self.s.url}/api/ingest",
                content=body,
                headers={"content-type": ARROW},
                params={"max_future_s": 3600},
            )
        except httpx.HTTPError as e:
            self._failed(f"{type(e).__name__}: {e}")
            raise UpstreamError(str(e)) from e
        if r.status_code >= 500 or r.status_code in (408, 429):
            self._failed(f"HTTP {r.status_code}: {r.text[:200]}")
            raise UpstreamError(f"HTTP {r.status_code}")
        self.stats.connected = True
        if r.status_code >= 400:  # the upstream will never take this batch: say so, go on
            self.stats.errors += 1
            self.stats.refused_samples += len(batch)
            self.stats.last_error = f"HTTP {r.status_code}: {r.text[:200]}"
            log.error("forward: upstream refused %d samples: %s", len(batch), r.text[:200])
            return
        result = r.json()
        self.stats.sent_samples += int(result.get("accepted", 0))
        self.stats.refused_samples += int(result.get("rejected", 0))
        self.stats.last_sent_ms = time.time_ns() // 1_000_000

    def _failed(self, reason: str) -> None:
        if self.stats.connected or not self.stats.errors:
            log.warning("forward: upstream %s unavailable (%s); spooling", self.s.url, reason)
        self.stats.connected = False
        self.stats.errors += 1
        self.stats.last_error = reason

    def health(self) -> dict[str, Any]:
        # state: the upstream link (LinkState); the spool is sent while it is connected
        return asdict(self.stats) | {"state": self.link.state.value}

    def problems(self) -> list[str]:
        return []  # an absent upstream is what the spool is for; health shows it

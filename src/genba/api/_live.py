"""The ``/ws/live`` WebSocket: new samples of matching tags, as columnar JSON messages.

Messages, all JSON objects with a ``type``:

* ``hello``: ``{"type": "hello", "pattern": ..., "tags": {id: path}}`` once on connect;
* ``samples``: ``{"type": "samples", "tags": {id: path, ...new ones}, "tag": [ids],
  "ts_ms": [...], "value": [...], "quality": [...]}``, at most about ten a second;
* ``heartbeat``: ``{"type": "heartbeat", "now_ms": ...}`` (the node's clock) every
  ``HEARTBEAT_S`` while no samples flow, so a screen can tell a quiet plant (report by
  exception) from a node it lost: no message for three heartbeats means "not live";
* ``error``: the API error body plus ``"type": "error"``, then the socket closes (1008).

A stale mark (quality 2, value ``null``) says the tag's source is gone (docs/kpi.md).

A client slower than the data loses the oldest samples, never the node's memory: the
subscription is bounded and counts its drops in ``/api/health``.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import orjson
from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from genba.api._errors import error_body
from genba.bus import Overflow, Subscription
from genba.errors import PatternError
from genba.node import Node
from genba.paths import check_pattern
from genba.types import NS_PER_MS, SampleBatch

LIVE_QUEUE_SAMPLES = 100_000
SEND_INTERVAL_S = 0.1
HEARTBEAT_S = 2.0
_NUMPY = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


async def live_stream(ws: WebSocket, node: Node, pattern: str) -> None:
    await ws.accept()
    try:
        check_pattern(pattern)
    except PatternError as e:
        await ws.send_json({"type": "error"} | error_body(400, "bad_pattern", str(e)))
        await ws.close(code=1008, reason="bad pattern")
        return
    client = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
    sub = node.bus.subscribe(
        pattern,
        name=f"ws-live {client}",
        max_samples=LIVE_QUEUE_SAMPLES,
        overflow=Overflow.DROP_OLDEST,
    )
    sent: set[int] = set()
    try:
        hello = {t.id: t.path for t in node.registry.match(pattern)}
        sent.update(hello)
        await ws.send_json({"type": "hello", "pattern": pattern, "tags": hello})
        # Whichever ends first (client gone, or the bus closed) ends the other at once.
        tasks = {
            asyncio.create_task(_until_closed(ws), name=f"ws-reader {client}"),
            asyncio.create_task(_send_loop(ws, node, sub, sent), name=f"ws-sender {client}"),
        }
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            # A client gone mid-send shows up as a disconnect, OSError or RuntimeError: not ours.
            exc = t.exception()
            if exc and not isinstance(exc, WebSocketDisconnect | OSError | RuntimeError):
                raise exc
    finally:
        sub.close()


async def _until_closed(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()  # clients have nothing to say yet; we only watch for close


async def _send_loop(ws: WebSocket, node: Node, sub: Subscription, sent: set[int]) -> None:
    loop = asyncio.get_running_loop()
    said = loop.time()
    while not sub.finished:
        batches = [i for i in await sub.drain(timeout=1.0) if isinstance(i, SampleBatch)]
        if not batches and loop.time() - said >= HEARTBEAT_S:
            await ws.send_json({"type": "heartbeat", "now_ms": node.clock.now_ns() // NS_PER_MS})
            said = loop.time()
        if batches:
            said = loop.time()
            b = SampleBatch.concat(batches)
            ids = [i for i in np.unique(b.tag_ids).tolist() if i not in sent]  # per tag, not sample
            sent.update(ids)
            # orjson writes the columns straight from numpy, NaN (a stale mark) as null
            message = {
                "type": "samples",
                "tags": dict(zip(ids, node.registry.paths_of(ids), strict=True)),
                "tag": b.tag_ids,
                "ts_ms": b.ts_ns // NS_PER_MS,
                "value": b.values,
                "quality": b.quality,
            }
            await ws.send_text(orjson.dumps(message, option=_NUMPY).decode())
            await asyncio.sleep(SEND_INTERVAL_S)  # coalesce bursts into ~10 messages a second


def router(node: Node) -> APIRouter:
    """The live WebSocket."""
    r = APIRouter()

    @r.websocket("/ws/live")
    async def live(ws: WebSocket, pattern: str = "#") -> None:
        """Streams new samples of the tags matching ``pattern`` (see docs/api.md)."""
        await live_stream(ws, node, pattern)

    return r

"""Helpers the network connectors share: gathering decoded samples into one columnar batch,
and jittered exponential backoff between reconnects.

>>> p = Pending()
>>> p.add(3, 1_000, 2.5)
>>> p.take().values.tolist(), p.take()
([2.5], None)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import numpy as np
import numpy.typing as npt
import paho.mqtt.client as mqtt

from genba.types import Quality, SampleBatch


class Pending:
    """Samples decoded one message at a time, handed on as one batch by :meth:`take`.

    Single samples go in with :meth:`add`; a message decoded into columns goes in whole with
    :meth:`add_columns`. Order is kept.
    """

    def __init__(self) -> None:
        self._tags: list[int] = []
        self._ts: list[int] = []
        self._values: list[float] = []
        self._quality: list[int] = []
        self._chunks: list[SampleBatch] = []

    def add(self, tag_id: int, ts_ns: int, value: float, quality: int = Quality.GOOD) -> None:
        self._tags.append(tag_id)
        self._ts.append(ts_ns)
        self._values.append(value)
        self._quality.append(quality)

    def add_columns(
        self,
        tag_ids: npt.NDArray[np.int32],
        ts_ns: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Samples of one message, already in columns (quality good)."""
        self._cut()
        self._chunks.append(SampleBatch.from_columns(tag_ids=tag_ids, ts_ns=ts_ns, values=values))

    def _cut(self) -> None:
        if self._tags:
            self._chunks.append(
                SampleBatch.from_columns(
                    tag_ids=np.array(self._tags, dtype=np.int32),
                    ts_ns=np.array(self._ts, dtype=np.int64),
                    values=np.array(self._values, dtype=np.float64),
                    quality=np.array(self._quality, dtype=np.uint8),
                )
            )
            self._tags, self._ts, self._values, self._quality = [], [], [], []

    def take(self) -> SampleBatch | None:
        """Everything gathered since the last take, as columns; None if nothing."""
        self._cut()
        if not self._chunks:
            return None
        chunks, self._chunks = self._chunks, []
        return SampleBatch.concat(chunks)


ACK_EVERY = 10
"""Unacknowledged QoS 1/2 messages that flush at once: half of Mosquitto's default window of
20 messages in flight, so the broker keeps sending while genba stores the first half."""


def ack_when_stored(client: aiomqtt.Client) -> aiomqtt.Client:
    """Make ``client`` leave QoS 1/2 messages unacknowledged until :func:`consume` acks them
    (set before connecting, so a persistent session's queued messages wait too)."""
    client._client.manual_ack_set(True)  # aiomqtt has no option for it; paho's own switch
    return client


class _ChunkedSocket:
    """A plain TCP socket paho reads through: paho takes a packet in three ``recv`` calls
    (type, length, rest), one event-loop wake-up and three system calls per MQTT message;
    this reads up to 64 KiB at once and hands paho the bytes from memory. aiomqtt's reader
    goes on reading while ``pending()`` says bytes are buffered (the method it asks TLS
    sockets), so every message of a chunk is taken in one wake-up."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._at = 0

    def recv(self, n: int) -> bytes:
        if self._at >= len(self._buf):
            self._buf, self._at = self._sock.recv(max(n, _CHUNK)), 0  # BlockingIOError: none
        out = self._buf[self._at : self._at + n]
        self._at += len(out)
        return out

    def pending(self) -> int:
        return len(self._buf) - self._at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


_CHUNK = 65536


def read_in_chunks(client: aiomqtt.Client) -> None:
    """Let a connected client's paho read its plain TCP socket in chunks (:class:`_ChunkedSocket`);
    TLS sockets buffer already."""
    paho = client._client
    sock = paho._sock  # paho's socket: it has no public setter
    if type(sock) is socket.socket:
        paho._sock = _ChunkedSocket(sock)


async def consume(
    client: aiomqtt.Client,
    handle: Callable[[str, bytes], None],
    flush: Callable[[], Awaitable[None]],
    *,
    batch_ms: int,
    name: str,
    ack_every: int = 0,
) -> None:
    """Feed every message of a connected MQTT client to ``handle``; ``flush`` what was gathered
    every ``batch_ms`` and once more when the connection ends (the MQTT connectors' loop).

    With ``ack_every`` (a client made by :func:`ack_when_stored`), QoS 1/2 messages are
    acknowledged to the broker after the ``flush`` that stored their samples returns — the
    flush must take what was gathered before its first ``await`` — in the order received, as
    MQTT requires; ``ack_every`` unacknowledged messages flush at once, so the broker's window
    of messages in flight (20 in Mosquitto by default) never stalls the stream for ``batch_ms``.
    """
    unacked: list[tuple[int, int]] = []
    full = asyncio.Event()

    async def flush_and_ack() -> None:
        nonlocal unacked
        done, unacked = unacked, []
        full.clear()
        await flush()
        for mid, qos in done:
            client._client.ack(mid, qos)

    async def flusher() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(full.wait(), batch_ms / 1000)
            await flush_and_ack()

    def take(topic: str, payload: bytes, qos: int, mid: int) -> None:
        handle(topic, payload)
        if ack_every and qos > 0:
            unacked.append((mid, qos))
            if len(unacked) >= ack_every:
                full.set()

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        take(m.topic, bytes(m.payload), m.qos, m.mid)

    read_in_chunks(client)
    # Each message straight from paho's reader to ``handle``: aiomqtt's iterator costs an
    # object, a queue put and two event-loop turns per message (bench/connect.py: the JSON
    # path went from 0.47× to 1.0× a bare paho subscriber with this and read_in_chunks).
    client._client.on_message = on_message
    task = asyncio.create_task(flusher(), name=f"{name}-flush")
    try:
        # Only what came before the hook arrives here; the iterator raises on a disconnect.
        async for message in client.messages:
            take(str(message.topic), bytes(message.payload), message.qos, message.mid)
    finally:
        task.cancel()
        unacked = []  # this connection is gone: the broker resends them on the next one
        await flush()


async def every(interval_s: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` every ``interval_s`` seconds until cancelled (a connector's flusher)."""
    while True:
        await asyncio.sleep(interval_s)
        await action()

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
from collections.abc import Awaitable, Callable

import aiomqtt
import numpy as np
import numpy.typing as npt

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

    task = asyncio.create_task(flusher(), name=f"{name}-flush")
    try:
        async for message in client.messages:
            handle(str(message.topic), bytes(message.payload))
            if ack_every and message.qos > 0:
                unacked.append((message.mid, message.qos))
                if len(unacked) >= ack_every:
                    full.set()
    finally:
        task.cancel()
        unacked = []  # this connection is gone: the broker resends them on the next one
        await flush()


async def every(interval_s: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` every ``interval_s`` seconds until cancelled (a connector's flusher)."""
    while True:
        await asyncio.sleep(interval_s)
        await action()

"""MQTT publisher of JSON on unified-namespace topics.

Each sample goes to its tag path as ``{"value": v, "timestamp": ms}``. Setpoints are written
by publishing a number or ``{"value": v}`` to ``<tag path>/set``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Callable

import aiomqtt
import numpy as np
import numpy.typing as npt

from genba.retry import Session
from genba.sim._simulator import Simulator
from genba.sim.outputs._base import SETPOINTS, apply_setpoint

log = logging.getLogger("genba.sim")


class MqttOutput:
    """Publishes every sample of the simulator to an MQTT broker, like an edge gateway would.

    Samples wait in a bounded queue (``buffer_max`` messages) until the broker has them: with
    QoS 1 a message leaves the queue only when the broker acknowledged it, so a broker outage
    delays samples and does not lose them, unless the outage outlasts the queue (the oldest go
    first, counted in :attr:`dropped`, with a warning). The connection comes back by itself
    with jittered exponential backoff.
    """

    name = "mqtt"

    def __init__(
        self,
        sim: Simulator,
        host: str,
        port: int = 1883,
        *,
        qos: int = 0,
        username: str | None = None,
        password: str | None = None,
        identifier: str | None = None,
        buffer_max: int = 1_000_000,
        reconnect_max_s: float = 5.0,
        on_accepted: Callable[[str, str], None] | None = None,
    ) -> None:
        self.sim = sim
        self.host, self.port, self.qos = host, port, qos
        self._login = (username, password)
        self.identifier = identifier or f"genba-sim-{sim.scenario.plant.name}"
        self.reconnect_max_s = reconnect_max_s
        self.on_accepted = on_accepted
        self._queue: collections.deque[tuple[str, str]] = collections.deque(maxlen=buffer_max)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set while nothing waits for the broker
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.published = 0  # accepted by the broker (QoS >= 1) or written to it (QoS 0)
        self.dropped = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-output")
        await asyncio.wait_for(self.connected.wait(), 10)

    async def _run(self) -> None:
        async def lost(_: BaseException) -> None:
            self.connected.clear()

        session = Session(
            f"mqtt output {self.host}:{self.port}", max_s=self.reconnect_max_s, first_s=0.1,
            errors=(aiomqtt.MqttError,), log=log, on_connected=self.connected.set,
        )  # fmt: skip
        await session.run(self._serve, lost)

    async def _serve(self, session: Session) -> None:
        client = aiomqtt.Client(
            self.host, self.port, identifier=self.identifier,
            username=self._login[0], password=self._login[1],
        )  # fmt: skip
        async with client:
            for sp in SETPOINTS:
                await client.subscribe(f"+/+/+/+/{sp}/set", qos=1)
            listener = asyncio.create_task(self._listen(client), name="mqtt-setpoints")
            session.connected()
            try:
                await self._send(client)
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await listener

    async def _send(self, client: aiomqtt.Client) -> None:
        queue = self._queue
        while True:
            while queue:
                item = queue[0]
                topic, payload = item
                await client.publish(topic, payload, qos=self.qos)
                if queue and queue[0] is item:  # not pushed out by a full queue meanwhile
                    queue.popleft()
                self.published += 1
                if self.on_accepted is not None:
                    self.on_accepted(topic, payload)
            self._drained.set()
            self._wake.clear()
            await self._wake.wait()

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            path = str(message.topic).removesuffix("/set")
            try:
                body = json.loads(bytes(message.payload))
                value = float(body["value"] if isinstance(body, dict) else body)
            except (ValueError, TypeError, KeyError) as e:
                log.warning("mqtt: bad setpoint payload on %s: %s", message.topic, e)
                continue
            apply_setpoint(self.sim, path, value, "mqtt")

    async def publish(self, ts_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        paths = self.sim.tag_paths
        queue = self._queue
        room = (queue.maxlen or 0) - len(queue)
        added = 0
        for row, ts in enumerate((ts_ns // 1_000_000).tolist()):
            for col, v in enumerate(values[row].tolist()):
                if v == v:  # NaN: a dropout, no sample
                    queue.append((paths[col], f'{{"value":{v!r},"timestamp":{ts}}}'))
                    added += 1
        lost = added - room
        if lost > 0:
            if not self.dropped:
                log.warning(
                    "mqtt output: queue full (%d messages); dropping the oldest", len(queue)
                )
            self.dropped += lost
        if added:
            self._drained.clear()
            self._wake.set()
        await asyncio.sleep(0)

    async def flush(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every queued message is with the broker (or ``timeout`` passes)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout)

    async def stop(self) -> None:
        if self.connected.is_set():
            await self.flush(5.0)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

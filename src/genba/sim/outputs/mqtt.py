"""MQTT publisher of JSON on unified-namespace topics.

Each sample goes to its tag path as ``{"value": v, "timestamp": ms}``. Setpoints are written
by publishing a number or ``{"value": v}`` to ``<tag path>/set``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aiomqtt
import numpy as np
import numpy.typing as npt

from genba.sim._simulator import Simulator
from genba.sim.outputs._base import SETPOINTS, apply_setpoint

log = logging.getLogger("genba.sim")


class MqttOutput:
    """Publishes every sample of the simulator to an MQTT broker."""

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
    ) -> None:
        self.sim = sim
        self.qos = qos
        self._client = aiomqtt.Client(
            host, port, username=username, password=password,
            identifier=identifier or f"genba-sim-{sim.scenario.plant.name}",
        )  # fmt: skip
        self._listener: asyncio.Task[None] | None = None
        self.published = 0

    async def start(self) -> None:
        await self._client.__aenter__()
        for sp in SETPOINTS:
            await self._client.subscribe(f"+/+/+/+/{sp}/set", qos=1)
        self._listener = asyncio.create_task(self._listen(), name="mqtt-setpoints")

    async def _listen(self) -> None:
        async for message in self._client.messages:
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
        for row, ts in enumerate((ts_ns // 1_000_000).tolist()):
            for col, v in enumerate(values[row].tolist()):
                if v != v:  # NaN: a dropout
                    continue
                await self._client.publish(
                    paths[col], f'{{"value":{v!r},"timestamp":{ts}}}', qos=self.qos
                )
                self.published += 1

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.__aexit__(None, None, None)

"""Sparkplug B edge nodes: one per line, its machines as devices (Sparkplug 3.0).

Topics: ``spBv1.0/{site}/{NBIRTH|DBIRTH|DDATA|NDEATH|DDEATH}/{area}-{line}[/{machine}]``.
NBIRTH carries ``bdSeq`` and ``Node Control/Rebirth``; DBIRTH every metric with its name,
alias, datatype and value; DDATA the values by alias, each with its sample time. ``seq``
runs 0..255 per edge node; NDEATH (with the session's ``bdSeq``) is the MQTT will and is also
sent on a clean stop. NCMD ``Node Control/Rebirth`` republishes the births; DCMD writes
``temperature_sp`` / ``speed_sp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiomqtt
import numpy as np
import numpy.typing as npt

from genba.retry import Session
from genba.sim._sampler import SIGNALS
from genba.sim._simulator import Simulator
from genba.sim.outputs._base import INTEGER_SIGNALS, SETPOINTS, apply_setpoint
from genba.sparkplug import DataType, Topic, decode, encode, parse_topic

log = logging.getLogger("genba.sim")
REBIRTH = "Node Control/Rebirth"
MAX_TICKS_PER_DDATA = 60


def _datatype(signal: str) -> DataType:
    if signal in ("good_count", "reject_count"):
        return DataType.Int64
    return DataType.Int32 if signal in INTEGER_SIGNALS else DataType.Double


_VALUE_FIELD = {
    DataType.Int64: "long_value",
    DataType.Int32: "int_value",
    DataType.Double: "double_value",
}


def _metric(signal: str, alias: int, ts_ms: int, value: float, *, birth: bool) -> dict[str, object]:
    """A metric of one tag: births carry name and datatype, data only the alias (spec 6.4.4)."""
    dtype = _datatype(signal)
    m: dict[str, object] = {"alias": alias, "timestamp": ts_ms}
    if birth:
        m["name"], m["datatype"] = signal, dtype
    if value != value:  # NaN: no value known yet
        m["is_null"] = True
    else:
        m[_VALUE_FIELD[dtype]] = float(value) if dtype == DataType.Double else int(value)
    return m


class _EdgeNode:
    def __init__(
        self, out: SparkplugOutput, group: str, edge: str, devices: list[tuple[str, list[int]]]
    ) -> None:
        self.out = out
        self.group, self.edge = group, edge
        self.devices = devices  # (machine name, columns)
        self.bd_seq = -1
        self.seq = 0
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.births = 0  # NBIRTHs sent, rebirths included
        self.dropped_messages = 0  # DDATA not sent because the broker was away

    @property
    def _mqtt(self) -> aiomqtt.Client:
        if self.client is None:
            raise RuntimeError(f"edge node {self.edge} is not connected; call connect() first")
        return self.client

    def _next_seq(self) -> int:
        s = self.seq
        self.seq = (self.seq + 1) % 256
        return s

    def _death(self) -> bytes:
        return encode(
            timestamp=int(time.time() * 1000),
            metrics=[{"name": "bdSeq", "datatype": DataType.Int64, "long_value": self.bd_seq}],
        )

    async def run(self) -> None:
        """Stay connected: on every (re)connect a new bdSeq, a new will and new births (spec
        7.1: an edge node that reconnects must rebirth); DDATA while away is dropped."""
        session = Session(
            f"sparkplug {self.edge}", max_s=self.out.reconnect_max_s, first_s=0.1,
            errors=(aiomqtt.MqttError,), log=log, on_connected=self.connected.set,
        )  # fmt: skip
        await session.run(self._serve)

    async def _serve(self, session: Session) -> None:
        self.bd_seq = (self.bd_seq + 1) % 256
        will = aiomqtt.Will(str(Topic(self.group, "NDEATH", self.edge)), self._death(), qos=1)
        client = aiomqtt.Client(
            self.out.host, self.out.port, identifier=f"genba-sim-{self.group}-{self.edge}",
            will=will,
        )  # fmt: skip
        try:
            async with client:
                self.client = client
                await client.subscribe(str(Topic(self.group, "NCMD", self.edge)), qos=1)
                await client.subscribe(f"{Topic(self.group, 'DCMD', self.edge)}/+", qos=1)
                await self.birth()
                session.connected()
                await self._listen()
        finally:
            self.connected.clear()
            self.client = None

    async def birth(self) -> None:
        client = self._mqtt
        now = int(time.time() * 1000)
        self.seq = 0
        node = [
            {
                "name": "bdSeq",
                "datatype": DataType.Int64,
                "long_value": self.bd_seq,
                "timestamp": now,
            },
            {
                "name": REBIRTH,
                "datatype": DataType.Boolean,
                "boolean_value": False,
                "timestamp": now,
            },
        ]
        self.births += 1
        await client.publish(
            str(Topic(self.group, "NBIRTH", self.edge)),
            encode(timestamp=now, metrics=node, seq=self._next_seq()),
        )
        last_ts, last = self.out.last_ts_ms, self.out.last
        for device, cols in self.devices:
            metrics = [
                _metric(SIGNALS[c % len(SIGNALS)][0], c + 1, last_ts, last[c], birth=True)
                for c in cols
            ]
            await client.publish(
                str(Topic(self.group, "DBIRTH", self.edge, device)),
                encode(timestamp=now, metrics=metrics, seq=self._next_seq()),
            )

    async def data(self, ts_ms: list[int], values: npt.NDArray[np.float64]) -> None:
        client = self.client
        for start in range(0, len(ts_ms), MAX_TICKS_PER_DDATA):
            rows = range(start, min(start + MAX_TICKS_PER_DDATA, len(ts_ms)))
            for device, cols in self.devices:
                metrics = [
                    _metric(
                        SIGNALS[c % len(SIGNALS)][0], c + 1, ts_ms[r], values[r, c], birth=False
                    )
                    for r in rows
                    for c in cols
                    if values[r, c] == values[r, c]
                ]
                if not metrics:  # nothing changed (report by exception)
                    continue
                if client is None or not self.connected.is_set():
                    self.dropped_messages += 1
                    continue
                try:
                    await client.publish(
                        str(Topic(self.group, "DDATA", self.edge, device)),
                        encode(timestamp=ts_ms[rows[-1]], metrics=metrics, seq=self._next_seq()),
                    )
                except aiomqtt.MqttError:
                    self.dropped_messages += 1  # the connection dropped; run() reconnects

    async def _listen(self) -> None:
        async for message in self._mqtt.messages:
            try:
                topic = parse_topic(str(message.topic))
                payload = decode(bytes(message.payload))
            except Exception as e:  # a bad command must not stop the edge node
                log.warning("sparkplug %s: bad command on %s: %s", self.edge, message.topic, e)
                continue
            if topic.message_type == "NCMD":
                if any(m.name == REBIRTH and m.boolean_value for m in payload.metrics):
                    log.info("sparkplug %s: rebirth requested", self.edge)
                    await self.birth()
            elif topic.message_type == "DCMD" and topic.device:
                for m in payload.metrics:
                    name = m.name or SIGNALS[(m.alias - 1) % len(SIGNALS)][0]
                    if name not in SETPOINTS:
                        log.warning("sparkplug %s: %s is not writable", self.edge, name)
                        continue
                    kind = m.WhichOneof("value")
                    if kind not in ("double_value", "float_value", "int_value", "long_value"):
                        log.warning("sparkplug %s: DCMD %s carries no number", self.edge, name)
                        continue
                    path = f"{self.out.line_of[self.edge]}/{topic.device}/{name}"
                    apply_setpoint(self.out.sim, path, float(getattr(m, kind)), "sparkplug")

    async def close(self) -> None:
        if self.client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                await self.client.publish(
                    str(Topic(self.group, "NDEATH", self.edge)), self._death(), qos=1
                )
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class SparkplugOutput:
    """One Sparkplug B edge node per simulated line."""

    name = "sparkplug"

    def __init__(
        self, sim: Simulator, host: str, port: int = 1883, *, reconnect_max_s: float = 5.0
    ) -> None:
        self.sim, self.host, self.port = sim, host, port
        self.reconnect_max_s = reconnect_max_s
        n_sig = len(SIGNALS)
        self.last = np.full(len(sim.tag_paths), np.nan)
        self.last_ts_ms = sim.t0_ns // 1_000_000
        self.nodes: list[_EdgeNode] = []
        self.line_of: dict[str, str] = {}
        for line in sim.plant.lines:
            site, area, name = line.path.split("/")
            edge = f"{area}-{name}"
            self.line_of[edge] = line.path
            devices = [
                (m.path.rsplit("/", 1)[1], list(range(m.index * n_sig, (m.index + 1) * n_sig)))
                for m in sim.plant.machines
                if m.line is line
            ]
            self.nodes.append(_EdgeNode(self, site, edge, devices))

    async def start(self) -> None:
        for node in self.nodes:
            node.task = asyncio.create_task(node.run(), name=f"sparkplug-{node.edge}")
        for node in self.nodes:
            await asyncio.wait_for(node.connected.wait(), 10)

    async def publish(self, ts_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        ts_ms = (ts_ns // 1_000_000).tolist()
        for node in self.nodes:
            await node.data(ts_ms, values)
        rows_ok = ~np.isnan(values)
        self.last = np.where(rows_ok[-1], values[-1], self.last)
        self.last_ts_ms = ts_ms[-1]

    async def stop(self) -> None:
        for node in self.nodes:
            await node.close()

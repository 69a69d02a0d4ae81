"""Modbus TCP client: poll registers by a register map, write setpoints (pymodbus).

Each ``[[connector.register]]`` maps one tag to a table (holding, input, coil, discrete), an
address, a data type (int16, uint16, int32, uint32, float32) with word order, and
``value = raw × scale + offset``. Registers of a table are read in as few requests as possible
(contiguous runs of at most 125 registers) every ``poll_ms``; a failed poll is counted, shown in
health, and retried (``genba.retry.Session``: a tick later, then waits doubling up to
``reconnect_max_s``), reconnecting as needed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from genba.connectors._base import ConnectorContext
from genba.errors import NotConnectedError, WriteRejectedError
from genba.paths import check_path
from genba.retry import Session
from genba.types import Quality, SampleBatch, TagSpec

log = logging.getLogger("genba.connectors.modbus")
MAX_READ = 125  # registers per request (Modbus application protocol 6.3)
WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
DTYPE = {"int16": ">i2", "uint16": ">u2", "int32": ">i4", "uint32": ">u4", "float32": ">f4"}


# Modbus exception codes (Modbus Application Protocol v1.1b3, 7) and what to check.
_EXCEPTIONS = {
    1: ("illegal function", "the device does not serve this table: check `table`"),
    2: ("illegal data address", "the registers are not in its map: check `address` (0-based) and `table`"),
    3: ("illegal data value", "the count or value is out of its range: check `type` and the register map"),
    4: ("server device failure", "the device failed, or no unit with this id: check `unit`"),
    6: ("server device busy", "it is busy: raise `poll_ms`"),
    10: ("gateway path unavailable", "the gateway has no route to this unit: check the gateway and `unit`"),
    11: ("gateway target failed to respond", "the serial device behind the gateway is silent: check `unit` and its wiring"),
}  # fmt: skip


class RegisterSettings(BaseModel):
    """``[[connector.register]]``: one tag read from (and maybe written to) a device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(description="Tag path the value is stored under.")
    table: Literal["holding", "input", "coil", "discrete"] = Field(
        "holding", description="Register table."
    )
    address: int = Field(ge=0, le=65535, description="Address of the (first) register, from 0.")
    type: Literal["int16", "uint16", "int32", "uint32", "float32"] = Field(
        "uint16", description="Data type (coils and discrete inputs are 0/1)."
    )
    word_order: Literal["big", "little"] = Field(
        "big", description="Two-register types: big = high word first (ABCD), little = CDAB."
    )
    scale: float = Field(1.0, description="value = raw × scale + offset.")
    offset: float = Field(0.0, description="value = raw × scale + offset.")
    unit: str = Field("", description="Unit of the tag.")
    writable: bool = Field(False, description="Whether genba may write it (holding, coil).")

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        return check_path(v)


class ModbusSettings(BaseModel):
    """Options of ``[[connector]]`` when ``kind = "modbus"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Device host name or address.")
    port: int = Field(502, ge=1, le=65535, description="Modbus TCP port.")
    unit: int = Field(1, ge=0, le=255, description="Unit (slave) id.")
    poll_ms: int = Field(1000, ge=10, description="Poll interval.")
    reconnect_max_s: float = Field(
        30.0, gt=0, description="Longest wait between tries while the device does not answer."
    )
    timeout_s: float = Field(2.0, gt=0, description="Wait this long for an answer.")
    # In TOML `[[connector.register]]`; `register` itself would shadow BaseModel.register.
    registers: list[RegisterSettings] = Field(alias="register", description="The register map.")


class _Run:
    """One read request: ``count`` registers of ``table`` from ``start``."""

    def __init__(self, table: str, start: int, count: int) -> None:
        self.table, self.start, self.count = table, start, count


class ModbusConnector:
    """Polls a Modbus TCP device by its register map."""

    kind: ClassVar[str] = "modbus"
    Settings: ClassVar[type[BaseModel]] = ModbusSettings

    def __init__(self, settings: ModbusSettings, ctx: ConnectorContext) -> None:
        self.s = settings
        self.ctx = ctx
        regs = settings.registers
        tags = ctx.declare([TagSpec(r.tag, r.unit) for r in regs])
        self.ids = np.array([t.id for t in tags], dtype=np.int32)
        self.by_tag = {r.tag: r for r in regs}
        self.runs = self._plan(regs)
        self.client: AsyncModbusTcpClient | None = None

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        if not isinstance(settings, ModbusSettings):
            raise TypeError(f"expected ModbusSettings, got {type(settings).__name__}")
        return cls(settings, ctx)

    @staticmethod
    def _plan(regs: list[RegisterSettings]) -> list[_Run]:
        """Contiguous runs per table, each at most MAX_READ registers (bits: 2000)."""
        runs: list[_Run] = []
        for table in ("holding", "input", "coil", "discrete"):
            spans = sorted(
                (r.address, r.address + (1 if table in ("coil", "discrete") else WORDS[r.type]))
                for r in regs
                if r.table == table
            )
            limit = 2000 if table in ("coil", "discrete") else MAX_READ
            for a, b in spans:
                if (
                    runs
                    and runs[-1].table == table
                    and a <= runs[-1].start + runs[-1].count
                    and b - runs[-1].start <= limit
                ):
                    runs[-1].count = max(runs[-1].count, b - runs[-1].start)
                else:
                    runs.append(_Run(table, a, b - a))
        return runs

    def decode(self, words: dict[str, dict[int, int]]) -> npt.NDArray[np.float64]:
        """Values of every register of the map from the raw words read, by table and address."""
        out = np.empty(len(self.s.registers))
        for i, r in enumerate(self.s.registers):
            table = words[r.table]
            if r.table in ("coil", "discrete"):
                raw = float(table[r.address])
            else:
                w = [table[r.address + k] for k in range(WORDS[r.type])]
                if r.word_order == "little":
                    w.reverse()
                raw = float(np.array(w, dtype=">u2").view(DTYPE[r.type])[0])
            out[i] = raw * r.scale + r.offset
        return out

    async def _read(self, run: _Run) -> list[int]:
        if self.client is None:
            raise ConnectionError(f"{self.ctx.name}: not connected")
        read = {
            "holding": self.client.read_holding_registers,
            "input": self.client.read_input_registers,
            "coil": self.client.read_coils,
            "discrete": self.client.read_discrete_inputs,
        }[run.table]
        reply = await read(run.start, count=run.count, device_id=self.s.unit)
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0) or 0)
            name, fix = _EXCEPTIONS.get(code, ("error", "see the device's manual"))
            raise ModbusException(
                f"{run.table} {run.start}+{run.count} of unit {self.s.unit}: the device answered "
                f"exception {code} ({name}); {fix}"
            )
        data = reply.bits[: run.count] if run.table in ("coil", "discrete") else reply.registers
        return [int(x) for x in data]

    async def poll(self) -> SampleBatch:
        """Read every register once; raise on a failed read."""
        if self.client is None or not self.client.connected:
            # pymodbus's own reconnect loop is off (reconnect_delay=0): this loop retries.
            self.client = AsyncModbusTcpClient(
                self.s.host, port=self.s.port, timeout=self.s.timeout_s, retries=0,
                reconnect_delay=0,
            )  # fmt: skip
            if not await asyncio.wait_for(self.client.connect(), self.s.timeout_s):
                raise ConnectionError(
                    f"cannot connect to {self.s.host}:{self.s.port}; check host, port (502 by "
                    "default) and that the device or gateway accepts Modbus TCP"
                )
        words: dict[str, dict[int, int]] = {t: {} for t in ("holding", "input", "coil", "discrete")}
        for run in self.runs:
            for k, v in enumerate(await self._read(run)):
                words[run.table][run.start + k] = v
        now = self.ctx.clock.now_ns()
        values = self.decode(words)
        return SampleBatch.from_columns(
            tag_ids=self.ids,
            ts_ns=np.full(len(values), now, dtype=np.int64),
            values=values,
            quality=np.full(len(values), Quality.GOOD, dtype=np.uint8),
        )

    async def write(self, path: str, value: float) -> float | None:
        """Write a writable register: raw = (value − offset) / scale, encoded by its type;
        the next poll reads it back."""
        name = self.ctx.name
        r = self.by_tag.get(path)
        if r is None or not r.writable:
            raise WriteRejectedError(
                name, path, value, "not a register with writable = true in [[connector.register]]"
            )
        if r.table not in ("holding", "coil"):
            raise WriteRejectedError(name, path, value, f"the {r.table} table is read-only")
        client = self.client
        if client is None or not client.connected or not self.ctx.health.connected:
            # health.connected follows the session: a poll that failed ended the link even
            # where the TCP socket has not noticed yet
            raise NotConnectedError(name, path, f"no link to {self.s.host}:{self.s.port}")
        try:
            reply = await self._write_register(client, r, value)
        except (ModbusException, ConnectionError, OSError) as e:  # no answer: the link failed
            raise NotConnectedError(
                name, path, f"{self.s.host}:{self.s.port} did not answer the write ({e})"
            ) from e
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0) or 0)
            what, fix = _EXCEPTIONS.get(code, ("error", "see the device's manual"))
            raise WriteRejectedError(name, path, value, f"device exception {code} ({what}); {fix}")
        return None

    async def _write_register(
        self, client: AsyncModbusTcpClient, r: RegisterSettings, value: float
    ) -> Any:
        """Send ``value`` to register ``r``: raw = (value − offset) / scale, in its type."""
        raw = (value - r.offset) / r.scale
        if r.table == "coil":
            return await client.write_coil(r.address, bool(raw), device_id=self.s.unit)
        info = np.iinfo(DTYPE[r.type]) if r.type != "float32" else None
        if info is not None and not info.min <= round(raw) <= info.max:
            raise WriteRejectedError(
                self.ctx.name, r.tag, value, f"raw value {round(raw)} does not fit a {r.type}"
            )
        typed = np.array([raw if r.type == "float32" else round(raw)], dtype=DTYPE[r.type])
        words = [int(w) for w in typed.view(">u2")]
        if r.word_order == "little":
            words.reverse()
        return await client.write_registers(r.address, words, device_id=self.s.unit)

    async def run(self) -> None:
        try:
            await self.ctx.keep_connected(
                self._serve,
                errors=(ModbusException, ConnectionError, OSError, TimeoutError),
                max_s=self.s.reconnect_max_s,
                first_s=self.s.poll_ms / 1000,  # a failed poll is retried a tick later
                on_lost=self._lost,
            )
        finally:
            await self._lost(None)

    async def _serve(self, session: Session) -> None:
        while True:
            batch = await self.poll()
            session.connected()
            await self.ctx.publish(batch)
            await self.ctx.clock.sleep(self.s.poll_ms / 1000)

    async def _lost(self, _: BaseException | None) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

"""Modbus TCP server (pymodbus) with a fixed register map.

Holding registers, unit id 1. Machine ``m`` (in scenario order, from 0) has a block of 32
registers at ``32 × m``; its ``j``-th signal (order of :data:`genba.sim.SIGNALS`) sits at
``32 × m + 2 × j`` in two registers, high word first (big-endian, "ABCD"): codes and
counters as unsigned 32-bit integers, everything else as IEEE 754 float32. Writing
``temperature_sp`` or ``speed_sp`` (float32) changes the setpoint. ``register_map()`` lists
every address; docs/simulator.md prints the table for the demo plant.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from genba.sim._sampler import SIGNALS
from genba.sim._simulator import Simulator
from genba.sim.outputs._base import INTEGER_SIGNALS, SETPOINTS, apply_setpoint

log = logging.getLogger("genba.sim")
BLOCK = 32
HOLDING = 3  # Modbus function code "read holding registers"


def register_map(sim: Simulator) -> list[dict[str, object]]:
    """Address, tag, data type and unit of every register pair."""
    out = []
    for m in sim.plant.machines:
        for j, (sig, unit, _) in enumerate(SIGNALS):
            out.append(
                {
                    "address": BLOCK * m.index + 2 * j,
                    "tag": f"{m.path}/{sig}",
                    "type": "uint32" if sig in INTEGER_SIGNALS else "float32",
                    "unit": unit,
                    "writable": sig in SETPOINTS,
                }
            )
    return out


class ModbusOutput:
    """Serves the simulated plant's tags as Modbus holding registers."""

    name = "modbus"

    def __init__(self, sim: Simulator, port: int = 502, *, host: str = "127.0.0.1") -> None:
        self.sim = sim
        n_sig = len(SIGNALS)
        n = len(sim.plant.machines)
        self.cols = np.arange(n * n_sig)
        machine, sig = np.divmod(self.cols, n_sig)
        self.address = BLOCK * machine + 2 * sig
        self.is_int = np.isin(
            sig, [j for j, (s, _, _) in enumerate(SIGNALS) if s in INTEGER_SIGNALS]
        )
        self.setpoint_cols = [c for c in self.cols.tolist() if SIGNALS[c % n_sig][0] in SETPOINTS]
        self.registers = np.zeros(BLOCK * n, dtype=np.uint16)
        self._device = SimDevice(
            id=1,
            simdata=[SimData(0, count=BLOCK * n, values=0, datatype=DataType.REGISTERS)],
            action=self._access,
        )
        self._address = (host, port)
        self.server: ModbusTcpServer | None = None

    async def _access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        """Every request: reads see the newest values; writes of setpoints reach the model."""
        current_registers[:] = self.registers[
            start_address : start_address + len(current_registers)
        ].tolist()
        if set_values is None:
            return
        written = dict(
            zip(
                range(address, address + len(set_values)), (int(v) for v in set_values), strict=True
            )
        )
        for col in self.setpoint_cols:
            a = int(self.address[col])
            if a in written or a + 1 in written:
                hi, lo = (
                    written.get(a, int(self.registers[a])),
                    written.get(a + 1, int(self.registers[a + 1])),
                )
                value = float(np.array([hi, lo], dtype=">u2").view(">f4")[0])
                if apply_setpoint(self.sim, self.sim.tag_paths[col], value, "modbus"):
                    self.registers[a], self.registers[a + 1] = hi, lo

    async def start(self) -> None:
        self.server = ModbusTcpServer(self._device, address=self._address)  # needs the loop
        await self.server.serve_forever(background=True)  # returns once it listens

    def _encode(self, row: npt.NDArray[np.float64]) -> npt.NDArray[np.uint16]:
        ok = ~np.isnan(row)
        as_float = row.astype(">f4").view(">u2").reshape(-1, 2)
        as_int = np.where(ok, row, 0).astype(np.int64).astype(">u4").view(">u2").reshape(-1, 2)
        return np.where(self.is_int[:, None], as_int, as_float).astype(np.uint16)

    async def publish(self, ts_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        row = values[-1]
        words = self._encode(row)
        keep = ~np.isnan(row)  # a dropout leaves the last value in place, as a PLC would
        self.registers[self.address[keep]] = words[keep, 0]
        self.registers[self.address[keep] + 1] = words[keep, 1]

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()

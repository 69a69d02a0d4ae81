"""The output contract and the loop that feeds outputs from a running simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from genba.sim._simulator import Simulator

log = logging.getLogger("genba.sim")

SETPOINTS = ("temperature_sp", "speed_sp")
INTEGER_SIGNALS = ("state", "reason", "product", "good_count", "reject_count")


class Output(Protocol):
    """A network face of the simulator."""

    name: str

    async def start(self) -> None:
        """Listen or connect; from now on clients see the plant."""
        ...

    async def publish(self, ts_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        """Show the new ticks (rows) of every tag (columns); NaN: no sample (a dropout)."""
        ...

    async def stop(self) -> None:
        """Say goodbye to clients (e.g. a Sparkplug death) and close."""
        ...


def apply_setpoint(sim: Simulator, path: str, value: float, source: str) -> bool:
    """Write a setpoint on behalf of a client; log and refuse what does not fit."""
    try:
        sim.write_setpoint(path, value)
    except (KeyError, ValueError) as e:
        log.warning("%s: refused setpoint write %s = %r: %s", source, path, value, e)
        return False
    log.info("%s: setpoint %s = %s", source, path, value)
    return True


class ReportByException:
    """An output that sends a value only when it changes, as OPC UA subscriptions, Sparkplug
    edge nodes and most MQTT gateways do: state, codes and counters on every change, analog
    tags when they move more than ``deadband_pct`` percent of the last value sent. Wraps
    another output; ticks with nothing to send are not sent at all.

    >>> import numpy as np
    >>> rbe = ReportByException(None, ["m/state", "m/vibration"], deadband_pct=10.0)
    >>> rbe.filter(np.array([[1.0, 5.0], [1.0, 5.2], [2.0, 6.0]])).tolist()
    [[1.0, 5.0], [nan, nan], [2.0, 6.0]]
    """

    def __init__(
        self, inner: Output | None, tag_paths: Sequence[str], *, deadband_pct: float = 0.5
    ) -> None:
        self.inner = inner
        self.name = f"{inner.name} (report by exception)" if inner is not None else "rbe"
        signal = [p.rsplit("/", 1)[-1] for p in tag_paths]
        self.exact = np.array([s in INTEGER_SIGNALS for s in signal])
        self.band = deadband_pct / 100.0
        self.last = np.full(len(tag_paths), np.nan)
        self.sent_values = 0

    def filter(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The values to send (NaN: nothing), tick by tick against the last value sent."""
        out = np.full_like(values, np.nan)
        last = self.last
        for r in range(len(values)):
            v = values[r]
            moved = np.abs(v - last)
            changed = ~np.isnan(v) & (
                np.isnan(last) | np.where(self.exact, moved > 0, moved > self.band * np.abs(last))
            )
            out[r, changed] = v[changed]
            last = np.where(changed, v, last)
        self.last = last
        self.sent_values += int((~np.isnan(out)).sum())
        return out

    async def start(self) -> None:
        if self.inner is not None:
            await self.inner.start()

    async def publish(self, ts_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        sent = self.filter(values)
        rows = np.flatnonzero(~np.isnan(sent).all(axis=1))
        if self.inner is None or not len(rows):
            return
        if self.inner.name != "opcua":
            await self.inner.publish(ts_ns[rows], sent[rows])
            return
        # A server that holds current values (OPC UA) shows each changed tick in turn.
        for r in rows:
            await self.inner.publish(ts_ns[r : r + 1], sent[r : r + 1])

    async def stop(self) -> None:
        if self.inner is not None:
            await self.inner.stop()


async def run_outputs(
    sim: Simulator,
    outputs: Sequence[Output],
    *,
    speed: float = 1.0,
    until_s: float | None = None,
    stop: asyncio.Event | None = None,
    on_step: Callable[[float], None] | None = None,
) -> None:
    """Advance ``sim`` at ``speed`` × real time and publish every new tick to ``outputs``
    until ``stop`` is set or simulated time reaches ``until_s``."""
    stop = stop or asyncio.Event()
    for out in outputs:
        await out.start()
    try:
        wall0 = time.monotonic()
        start_s = sim.now_s
        period = sim.sampler.dt
        while not stop.is_set():
            target = start_s + (time.monotonic() - wall0) * speed
            if until_s is not None:
                target = min(target, until_s)
            target = min(target, sim.now_s + 3600.0)  # at most an hour a step
            ts, values = sim.advance(target + 1e-9)
            if len(ts):
                for out in outputs:
                    await out.publish(ts, values)
            if on_step:
                on_step(sim.now_s)
            if until_s is not None and sim.now_s >= until_s:
                return
            next_tick = (np.floor(sim.now_s / period) + 1) * period
            wait = max((next_tick - (start_s + (time.monotonic() - wall0) * speed)) / speed, 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(wait, 1.0))
    finally:
        for out in outputs:
            await out.stop()

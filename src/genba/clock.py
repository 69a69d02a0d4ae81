"""One clock for everything that reads time, so the simulator and tests can run faster
than real time.

Times are UTC integer nanoseconds since the Unix epoch.

>>> clock = ManualClock(start_ns=1_000)
>>> clock.advance(2.5)
>>> clock.now_ns()
2500001000
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

from genba.types import NS_PER_S


@runtime_checkable
class Clock(Protocol):
    """What genba asks of a clock."""

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (1.0 for the wall clock)."""
        ...

    def now_ns(self) -> int:
        """Current UTC time in integer nanoseconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class RealClock:
    """The wall clock."""

    speed = 1.0

    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimulatedClock:
    """A clock that starts at ``start_ns`` and runs ``speed`` times faster than real time."""

    def __init__(self, *, start_ns: int, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"SimulatedClock speed must be > 0, got {speed}")
        self.speed = speed
        self._start_ns = start_ns
        self._mono0 = time.monotonic_ns()

    def now_ns(self) -> int:
        return self._start_ns + int((time.monotonic_ns() - self._mono0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


class ManualClock:
    """A clock that moves only when told to: for tests."""

    speed = 1.0

    def __init__(self, *, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * NS_PER_S)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

"""A small simulated line: machines in series with buffers, breakdowns and sensors.

Good enough to drive a node end to end. It reads the machines of one line from the asset
model and publishes, per machine, the tags in :data:`SIGNALS` at ``sample_rate_hz``.
Deterministic for a seed. The full plant simulator replaces it through the same
``genba.connectors`` entry point.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genba.config import MachineSettings
from genba.connectors._base import ConnectorContext
from genba.errors import ConfigError
from genba.paths import check_asset_path
from genba.types import NS_PER_S, SampleBatch, TagSpec

RUNNING, IDLE, STARVED, BLOCKED, DOWN = 1, 2, 3, 4, 5

SIGNALS: list[tuple[str, str, str]] = [
    ("state", "1", "Machine state: 1 running, 2 idle, 3 starved, 4 blocked, 5 down"),
    ("speed", "1/min", "Parts per minute"),
    ("motor_current", "A", "Main drive motor current"),
    ("temperature", "degC", "Drive temperature"),
    ("vibration", "mm/s", "Vibration velocity, RMS"),
    ("good_count", "1", "Good parts since the simulator started"),
    ("reject_count", "1", "Rejected parts since the simulator started"),
]

_MAX_TICKS_PER_STEP = 36_000  # catch-up bound when the clock runs far ahead


class SimulatorSettings(BaseModel):
    """Options of ``[[connector]]`` when ``kind = "simulator"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: str = Field(description="site/area/line whose [[machine]]s are simulated.")
    sample_rate_hz: float = Field(1.0, gt=0, le=100, description="Samples per second per tag.")
    seed: int = Field(0, description="Random seed; the same seed gives the same data.")
    buffer_capacity: int = Field(20, ge=1, description="Parts a conveyor holds between machines.")
    mtbf_s: float = Field(1800.0, gt=0, description="Mean time between failures, seconds.")
    mttr_s: float = Field(90.0, gt=0, description="Mean time to repair, seconds.")
    reject_rate: float = Field(0.02, ge=0, lt=1, description="Share of parts rejected.")

    @field_validator("line")
    @classmethod
    def _line(cls, v: str) -> str:
        return check_asset_path(v, "line")


class _Line:
    """State of the simulated machines; :meth:`step` advances it one tick."""

    def __init__(
        self, machines: list[MachineSettings], s: SimulatorSettings, rng: np.random.Generator
    ) -> None:
        n = len(machines)
        self.s = s
        self.rng = rng
        self.cycle_s = np.array([m.ideal_cycle_time_s or 1.0 for m in machines])
        self.progress = np.zeros(n)
        self.buffer = np.zeros(max(n - 1, 0), dtype=np.int64)
        self.holding = np.zeros(n, dtype=bool)
        self.down_left_s = np.zeros(n)
        self.good = np.zeros(n)
        self.reject = np.zeros(n)
        self.temperature = np.full(n, 25.0)

    def step(self, dt: float) -> npt.NDArray[np.float64]:
        """Advance ``dt`` seconds; return ``(machines, len(SIGNALS))`` values."""
        n = len(self.cycle_s)
        s, rng = self.s, self.rng
        state = np.zeros(n, dtype=np.int64)
        slowdown = rng.uniform(1.0, 1.12, n)  # real cycles are slower than ideal
        fail = rng.random(n) < dt / s.mtbf_s
        for i in range(n - 1, -1, -1):  # downstream first, so space frees up this tick
            has_space = i == n - 1 or self.buffer[i] < s.buffer_capacity
            if self.down_left_s[i] > 0:
                self.down_left_s[i] -= dt
                state[i] = DOWN
                continue
            if fail[i]:
                self.down_left_s[i] = rng.exponential(s.mttr_s)
                state[i] = DOWN
                continue
            if self.holding[i]:
                if not has_space:
                    state[i] = BLOCKED
                    continue
                self._push(i)
            if i > 0 and self.buffer[i - 1] == 0:
                state[i] = STARVED
                continue
            state[i] = RUNNING
            self.progress[i] += dt / (self.cycle_s[i] * slowdown[i])
            while self.progress[i] >= 1 and (i == 0 or self.buffer[i - 1] > 0):
                self.progress[i] -= 1
                if i > 0:
                    self.buffer[i - 1] -= 1
                if rng.random() < s.reject_rate:
                    self.reject[i] += 1
                    continue
                self.good[i] += 1
                self.holding[i] = True
                if not (i == n - 1 or self.buffer[i] < s.buffer_capacity):
                    break
                self._push(i)
        running = state == RUNNING
        load = np.where(running, 1.0 / slowdown, 0.0)
        target = 22.0 + 28.0 * load
        self.temperature += (target - self.temperature) * min(dt / 600.0, 1.0)  # tau 10 min
        noise = rng.normal(size=(4, n))
        speed = np.where(running, 60.0 / (self.cycle_s * slowdown), 0.0)
        current = np.where(state == DOWN, 0.0, 2.0 + 18.0 * load + 0.3 * noise[0])
        vibration = np.abs(0.4 + 3.5 * load + 0.15 * noise[1])
        temperature = self.temperature + 0.1 * noise[2]
        return np.stack(
            [state, speed, current, temperature, vibration, self.good, self.reject], axis=1
        ).astype(np.float64)

    def _push(self, i: int) -> None:
        self.holding[i] = False
        if i < len(self.buffer):
            self.buffer[i] += 1


class SimulatorConnector:
    """Simulates the machines of one line and publishes their signals."""

    kind: ClassVar[str] = "simulator"
    Settings: ClassVar[type[BaseModel]] = SimulatorSettings

    def __init__(self, settings: SimulatorSettings, ctx: ConnectorContext) -> None:
        machines = ctx.config.machines_of(settings.line)
        if not machines:
            raise ConfigError(
                f"connector {ctx.name!r}: line {settings.line!r} has no [[machine]] in the config;"
                " declare its machines (path = 'site/area/line/machine') or fix `line`."
            )
        self.settings = settings
        self.ctx = ctx
        specs = [
            TagSpec(f"{m.path}/{name}", unit, desc)
            for m in machines
            for name, unit, desc in SIGNALS
        ]
        tags = ctx.declare(specs)
        self._ids = np.array([t.id for t in tags], dtype=np.int32)
        self._line = _Line(machines, settings, np.random.default_rng(settings.seed))
        self._period_ns = int(NS_PER_S / settings.sample_rate_hz)

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        if not isinstance(settings, SimulatorSettings):
            raise TypeError(f"expected SimulatorSettings, got {type(settings).__name__}")
        return cls(settings, ctx)

    def ticks(self, start_ns: int, count: int) -> SampleBatch:
        """Simulate ``count`` ticks from ``start_ns``: one row per tag and tick."""
        dt = self._period_ns / NS_PER_S
        values = np.stack([self._line.step(dt).ravel() for _ in range(count)])
        ts = start_ns + self._period_ns * np.arange(count, dtype=np.int64)
        n_tags = len(self._ids)
        return SampleBatch.from_columns(
            tag_ids=np.tile(self._ids, count),
            ts_ns=np.repeat(ts, n_tags),
            values=values.ravel(),
        )

    async def run(self) -> None:
        clock, period = self.ctx.clock, self._period_ns
        next_ns = -(-clock.now_ns() // period) * period  # next whole period
        self.ctx.health.connected = True
        try:
            while True:
                due = (clock.now_ns() - next_ns) // period + 1
                if due > 0:
                    count = min(int(due), _MAX_TICKS_PER_STEP)
                    await self.ctx.publish(self.ticks(next_ns, count))
                    next_ns += count * period
                wait_s = max((next_ns - clock.now_ns()) / NS_PER_S, 0.0)
                # Sleep to the next tick, but at least 50 ms of real time: a fast clock then
                # gets several ticks per batch instead of one wake-up per tick.
                await clock.sleep(max(wait_s, 0.05 * clock.speed))
        finally:
            self.ctx.health.connected = False

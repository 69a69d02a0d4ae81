"""The plant simulator as a connector: a scenario's machines publish onto the bus.

It follows the node's clock: with ``[clock] kind = "simulated"`` the plant runs faster than
real time. The scenario is a built-in name (``demo``, ``large``) or a TOML file path
(relative to genba.toml). Setpoint tags (``temperature_sp``, ``speed_sp``) are writable with
:meth:`SimulatorConnector.write`. Model and tags: docs/simulator.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from genba.connectors._base import ConnectorContext
from genba.errors import ConfigError, WriteRejectedError
from genba.sim import BUILT_IN, Simulator, load_scenario
from genba.types import NS_PER_S, SampleBatch

MAX_BATCH_SAMPLES = 1_000_000
"""Most samples one catch-up step publishes (``run``)."""


class SimulatorSettings(BaseModel):
    """Options of ``[[connector]]`` when ``kind = "simulator"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str = Field(
        "demo", description="Built-in scenario (demo, large) or a scenario file path."
    )
    seed: int | None = Field(None, description="Override the scenario's random seed.")
    sample_rate_hz: float | None = Field(
        None, ge=0.01, le=100, description="Override the scenario's samples per second per tag."
    )
    truth_hours: float = Field(
        0.25,
        gt=0,
        le=8760,
        description="Hours of the model's own history kept for ground truth "
        "(genba.sim.truth over this connector's simulator); the samples need none of it. Each "
        "hour costs about 100 MB a 1,000 machines (bench/memory.py): raise it to ask for the "
        "truth of longer spans.",
    )


class SimulatorConnector:
    """Runs a simulated plant against the node's clock and publishes its samples."""

    kind: ClassVar[str] = "simulator"
    Settings: ClassVar[type[BaseModel]] = SimulatorSettings

    def __init__(self, settings: SimulatorSettings, ctx: ConnectorContext) -> None:
        name = settings.scenario
        if name not in BUILT_IN and ctx.config.source is not None:
            name = str((ctx.config.source.parent / Path(name)).resolve())
        scenario = load_scenario(name)
        plant = scenario.plant.model_copy(
            update={
                k: v
                for k, v in (("seed", settings.seed), ("sample_rate_hz", settings.sample_rate_hz))
                if v is not None
            }
        )
        scenario = scenario.model_copy(update={"plant": plant})
        self.ctx = ctx
        now = ctx.clock.now_ns()
        # A node may run for months: keep only the history asked for, not all of it.
        self.sim = Simulator(
            scenario, t0_ns=now - now % NS_PER_S, retain_s=settings.truth_hours * 3600
        )
        tags = ctx.declare(self.sim.tag_specs())
        self._ids = np.array([t.id for t in tags], dtype=np.int32)
        self._writable = {
            p for p in self.sim.tag_paths if p.endswith(("/temperature_sp", "/speed_sp"))
        }

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        if not isinstance(settings, SimulatorSettings):
            raise TypeError(f"expected SimulatorSettings, got {type(settings).__name__}")
        try:
            return cls(settings, ctx)
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"connector {ctx.name!r}: {e}") from None

    def batch_until(self, until_s: float) -> SampleBatch:
        """Simulate to ``until_s`` after the start; the new samples as one batch."""
        ts_ns, values = self.sim.advance(until_s)
        n_ticks, n_tags = values.shape
        flat = values.ravel()
        batch = SampleBatch.from_columns(
            tag_ids=np.tile(self._ids, n_ticks), ts_ns=np.repeat(ts_ns, n_tags), values=flat
        )
        missing = np.isnan(flat)
        return batch.select(~missing) if missing.any() else batch

    async def write(self, path: str, value: float) -> float | None:
        """Write a setpoint tag of a simulated machine; its next sample reads it back."""
        if path not in self._writable:
            raise WriteRejectedError(
                self.ctx.name, path, value, "not a setpoint of the simulated plant; writable "
                "simulator tags end in /temperature_sp or /speed_sp"
            )  # fmt: skip
        try:
            self.sim.write_setpoint(path, value)
        except (KeyError, ValueError) as e:
            raise WriteRejectedError(self.ctx.name, path, value, str(e)) from None
        return None

    async def run(self) -> None:
        clock, t0 = self.ctx.clock, self.sim.t0_ns
        period_s = self.sim.sampler.dt
        self.ctx.health.connected = True
        # Behind the clock (a fast clock, a busy machine), the plant catches up in steps of
        # at most MAX_BATCH_SAMPLES, each published before the next is simulated: one step for
        # all the lag would hold the event loop and the lag's samples in memory at once.
        step_s = max(MAX_BATCH_SAMPLES // max(len(self._ids), 1), 1) * period_s
        try:
            while True:
                now_s = (clock.now_ns() - t0) / NS_PER_S
                until_s = min(now_s, self.sim.now_s + step_s)
                batch = self.batch_until(until_s)
                if len(batch):
                    await self.ctx.publish(batch)
                if until_s < now_s:
                    await asyncio.sleep(0)  # behind: let the rest of the node run, go on
                    continue
                # Wake for the next tick, but at least every 50 ms of real time and at most
                # every 0.5 s of real time: fast clocks get several ticks per batch.
                wait = max(period_s - (now_s % period_s), 0.05 * clock.speed)
                await clock.sleep(min(wait, 0.5 * clock.speed))
        finally:
            self.ctx.health.connected = False

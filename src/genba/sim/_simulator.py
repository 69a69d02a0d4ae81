"""The simulator as the rest of genba uses it: a plant, its samples and its truth."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genba.sim._plant import Plant
from genba.sim._sampler import SIGNAL_INDEX, SIGNALS, Sampler
from genba.sim._scenario import Scenario
from genba.types import NS_PER_S, TagSpec


class Simulator:
    """Runs a scenario forward and returns its samples.

    >>> from genba.sim import load_scenario
    >>> sim = Simulator(load_scenario("demo"))
    >>> ts_ns, values = sim.advance(60.0)   # the first simulated minute
    >>> values.shape == (60, len(sim.tag_paths))
    True
    """

    def __init__(
        self, scenario: Scenario, *, t0_ns: int | None = None, retain_s: float | None = None
    ) -> None:
        """``retain_s``: keep the model's history (for :func:`truth`) this long; ``None``
        keeps all of it. Long live runs set it, so memory stays bounded."""
        self.scenario = scenario
        self.retain_s = retain_s
        self._trimmed_at = 0.0
        self.plant = Plant(scenario, t0_ns=t0_ns)
        self.sampler = Sampler(self.plant)
        self.t0_ns = self.plant.t0_ns
        self.tag_paths = [f"{m.path}/{name}" for m in self.plant.machines for name, _, _ in SIGNALS]
        self._column = {p: i for i, p in enumerate(self.tag_paths)}
        self._faults = [
            (
                self._column_of(f.tag),
                f.kind,
                f.start_h * 3600,
                f.start_h * 3600 + f.duration_min * 60,
            )
            for f in scenario.fault
        ]
        self._stuck: dict[int, float] = {}

    def _trim(self, before_s: float) -> None:
        if before_s <= 0:
            return
        self.plant.logs.trim(before_s)
        self.plant.failures = [f for f in self.plant.failures if f.end_s >= before_s]
        marks = self.sampler.energy_at_minute
        for minute in [k for k in marks if k * 60 < before_s]:
            del marks[minute]
        self._trimmed_at = self.plant.now_s
        self.history_from_s = before_s

    history_from_s = 0.0
    """Seconds after the start from which the history is kept (:func:`truth` needs it)."""

    def _column_of(self, path: str) -> int:
        try:
            return self._column[path]
        except KeyError:
            raise ValueError(
                f"[[fault]] tag {path!r} is not a simulated tag; tags end in one of: "
                + ", ".join(n for n, _, _ in SIGNALS)
            ) from None

    def tag_specs(self) -> list[TagSpec]:
        """Path, unit and description of every simulated tag, in column order."""
        units = [(unit, desc) for _, unit, desc in SIGNALS]
        return [TagSpec(path, *units[i % len(SIGNALS)]) for i, path in enumerate(self.tag_paths)]

    @property
    def now_s(self) -> float:
        return self.plant.now_s

    def now_ns(self) -> int:
        return self.t0_ns + round(self.plant.now_s * NS_PER_S)

    def advance(self, until_s: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Simulate up to ``until_s`` (seconds after the start); return the new ticks' UTC
        times in ns and their values (ticks × tags, NaN where a dropout fault hides one)."""
        self.plant.run_until(until_s)
        ks, grid = self.sampler.chunk(until_s)
        if self.retain_s is not None and self.plant.now_s - self._trimmed_at >= min(
            max(self.retain_s / 4, 60.0), 3600.0
        ):  # trimmed every quarter of the span kept (1 min to 1 h): at most 1.25 × it held
            self._trim(self.sampler.next_tick * self.sampler.dt - self.retain_s)
        values = grid.reshape(len(ks), len(self.tag_paths))
        if self._faults and len(ks):
            t = self.sampler.tick_time_s(ks)
            for col, kind, a, b in self._faults:
                rows = (t >= a) & (t < b)
                if not rows.any():
                    continue
                if kind == "dropout":
                    values[rows, col] = np.nan
                else:
                    first = int(np.argmax(rows))
                    held = self._stuck.setdefault(col, float(values[first, col]))
                    values[rows, col] = held
        return self.t0_ns + ks * self.sampler.period_ns, values

    def write_setpoint(self, tag_path: str, value: float) -> None:
        """Write ``temperature_sp`` or ``speed_sp`` of a machine, by tag path."""
        machine, _, name = tag_path.rpartition("/")
        if machine not in self.plant.machine_index:
            raise KeyError(f"{tag_path!r} is not a tag of a simulated machine")
        self.plant.write_setpoint(machine, name, value)


__all__ = ["SIGNALS", "SIGNAL_INDEX", "Simulator"]

"""Scenario files: the plant the simulator builds, in TOML.

A scenario names lines of machines in series, their buffers, failure and wear parameters,
products and orders, the shift calendar and cost rates. ``[generator]`` adds N lines × M
machines for large plants. Built-in scenarios: ``demo``, ``large`` and ``wear``
(``genba/sim/scenarios/``). Reference: docs/simulator.md.

>>> s = load_scenario("demo")
>>> [m.name for m in s.lines[0].machine]
['filler', 'capper', 'labeler']
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genba.calendar import Break, Shift, ShiftCalendar
from genba.config import CostSettings, Product, parse_toml_model
from genba.config._production import ShiftSettings
from genba.errors import ConfigError
from genba.paths import check_asset_path, check_level

BUILT_IN = ("demo", "large", "wear")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlantSettings(_Strict):
    """``[plant]``: name, seed, sampling and time zone."""

    name: str = Field("plant", description="Name of the scenario.")
    seed: int = Field(0, description="Random seed: the same seed gives the same plant history.")
    start: datetime | None = Field(
        None, description="UTC start when run as fast as possible (default: now, whole hour)."
    )
    sample_rate_hz: float = Field(1.0, ge=0.01, le=100, description="Samples per second per tag.")
    timezone: str = Field(
        "UTC", description="Plant local time zone for shifts, e.g. Europe/Berlin."
    )

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


class SimCost(CostSettings):
    """``[costs]`` of a scenario file: a node's ``[costs]``
    (:class:`genba.config.CostSettings`) and how many operators work a simulated line. A
    scenario without the table uses 0.18 a kWh, 38 an operator hour and 12 a machine hour."""

    operators_per_line: float = Field(2.0, ge=0, description="Operators per line while worked.")


class SimProduct(Product):
    """``[[product]]`` of a scenario file: a product as a node knows it
    (:class:`genba.config.Product`) and the material one unit takes. A scenario without
    products makes one, ``standard``, at a price of 1.0 and a material cost of 0.3."""

    material_kg: float = Field(0.5, ge=0, description="Material per unit started, kg.")


class OrderSettings(_Strict):
    """A production order: a quantity of one product."""

    product: str = Field(description="Product name.")
    quantity: int = Field(gt=0, description="Units released into the line.")


class MachineParams(_Strict):
    """Behaviour of a machine; ``[machine_defaults]`` sets it for all, ``[[line.machine]]``
    overrides per machine."""

    ideal_cycle_s: float = Field(1.0, gt=0, description="Fastest cycle, base product, seconds.")
    cycle_cv: float = Field(0.03, ge=0, le=0.5, description="Variation of the real cycle.")
    mtbf_h: float = Field(8.0, gt=0, description="Mean running hours between sudden failures.")
    mttr_min: float = Field(10.0, gt=0, description="Mean repair time, minutes.")
    wear_weibull_shape: float = Field(3.0, gt=0, description="Weibull shape of wear-out life.")
    wear_weibull_scale_h: float = Field(
        80.0, gt=0, description="Weibull scale of wear-out life, running hours."
    )
    wear_warning_h: float = Field(
        10.0, ge=0, description="Running hours before a wear-out failure that drift shows."
    )
    wear_repair_min: float = Field(45.0, gt=0, description="Time to replace a worn part, minutes.")
    small_stops_per_h: float = Field(3.0, ge=0, description="Small stops per running hour.")
    small_stop_mean_s: float = Field(45.0, gt=0, description="Mean small stop length, seconds.")
    reduced_speed_per_day: float = Field(2.0, ge=0, description="Slow periods per day.")
    reduced_speed_mean_min: float = Field(30.0, gt=0, description="Mean slow period, minutes.")
    reduced_speed_factor: float = Field(0.8, gt=0, le=1, description="Speed during slow periods.")
    reject_rate: float = Field(0.01, ge=0, lt=1, description="Rejects at the quality optimum.")
    temperature_opt_c: float = Field(45.0, description="Process temperature optimum, degC.")
    temperature_drift_c: float = Field(3.0, ge=0, description="Amplitude of optimum drift, degC.")
    temperature_drift_h: float = Field(60.0, gt=0, description="Period of optimum drift, hours.")
    temperature_sp_c: float = Field(42.0, description="Initial temperature setpoint, degC.")
    speed_sp_pct: float = Field(85.0, gt=0, le=100, description="Initial speed setpoint, %.")
    rated_power_kw: float = Field(7.5, gt=0, description="Electrical power at full load, kW.")


class SimMachine(MachineParams):
    """``[[line.machine]]`` of a scenario file: one simulated machine, in flow order."""

    name: str = Field(description="Machine name: the last level of its path.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_level(v, "machine name")


class SimLine(_Strict):
    """``[[line]]`` of a scenario file: simulated machines in series with conveyors between."""

    path: str = Field(description="site/area/line.")
    buffer_capacity: int = Field(20, ge=1, description="Parts each conveyor holds.")
    changeover_min: float = Field(20.0, ge=0, description="Setup time at a product change.")
    startup_parts: int = Field(15, ge=0, description="Parts after a changeover at start-up.")
    startup_reject_rate: float = Field(0.2, ge=0, lt=1, description="Rejects during start-up.")
    orders: list[OrderSettings] = Field(default_factory=list, description="Orders, in sequence.")
    repeat_orders: bool = Field(True, description="Start the order list again when done.")
    machine: list[SimMachine] = Field(description="The machines, first to last.")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_asset_path(v, "line")


class GeneratorSettings(_Strict):
    """``[generator]``: add ``lines`` × ``machines_per_line`` machines to the plant."""

    lines: int = Field(0, ge=0, description="Number of generated lines.")
    machines_per_line: int = Field(5, ge=1, le=100, description="Machines per generated line.")
    site: str = Field("site", description="Site of the generated lines.")
    area: str = Field("area", description="Area of the generated lines.")


class FaultSettings(_Strict):
    """``[[fault]]``: a sensor fault injected on purpose."""

    tag: str = Field(description="Tag path, e.g. site/area/line/machine/vibration.")
    kind: Literal["dropout", "stuck"] = Field(description="dropout: no samples; stuck: frozen.")
    start_h: float = Field(ge=0, description="Hours after the start.")
    duration_min: float = Field(gt=0, description="Length in minutes.")


class Scenario(_Strict):
    """A whole scenario file."""

    plant: PlantSettings = Field(default_factory=PlantSettings)
    costs: SimCost = Field(
        default_factory=lambda: SimCost(
            energy_price_per_kwh=0.18, labour_rate_per_h=38.0, machine_rate_per_h=12.0
        )
    )
    shift: list[ShiftSettings] = Field(default_factory=list, description="No shifts: 24/7.")
    holidays: list[date] = Field(default_factory=list, description="Dates with no shifts.")
    product: list[SimProduct] = Field(
        default_factory=lambda: [SimProduct(name="standard", price=1.0, material_cost=0.3)]
    )
    machine_defaults: MachineParams = Field(default_factory=MachineParams)
    line: list[SimLine] = Field(default_factory=list)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    fault: list[FaultSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        names = {p.name for p in self.product}
        for line in self.line:
            for o in line.orders:
                if o.product not in names:
                    raise ValueError(
                        f"line {line.path!r} orders unknown product {o.product!r}; "
                        f"products are: {', '.join(sorted(names))}"
                    )
        paths = [ln.path for ln in self.lines]
        if len(set(paths)) != len(paths):
            raise ValueError("two lines share a path")
        return self

    @property
    def lines(self) -> list[SimLine]:
        """The lines written in the file, then the generated ones."""
        g = self.generator
        made = [
            SimLine(
                path=f"{g.site}/{g.area}/line{i + 1:03d}",
                machine=[
                    SimMachine(name=f"m{j + 1:02d}", **self.machine_defaults.model_dump())
                    for j in range(g.machines_per_line)
                ],
            )
            for i in range(g.lines)
        ]
        return list(self.line) + made

    def calendar(self) -> ShiftCalendar:
        shifts = [
            Shift(s.name, s.start, s.end, s.days, [Break(b.start, b.minutes) for b in s.breaks])
            for s in self.shift
        ]
        return ShiftCalendar(shifts, tz=self.plant.timezone, holidays=self.holidays)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name (``demo``, ``large``, ``wear``) or a scenario file by path.

    Machine settings not written in ``[[line.machine]]`` come from ``[machine_defaults]``.
    """
    if str(name_or_path) in BUILT_IN:
        text = files("genba.sim.scenarios").joinpath(f"{name_or_path}.toml").read_text()
        file = f"<built-in scenario {name_or_path}>"
    else:
        p = Path(name_or_path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"No scenario file at {p}; give a path or a built-in name: {', '.join(BUILT_IN)}."
            ) from None
        file = str(p)
    scenario = parse_toml_model(text, Scenario, file=file)
    return _apply_defaults(scenario, text)


def _apply_defaults(scenario: Scenario, text: str) -> Scenario:
    """Fill machine fields not set in the file from ``[machine_defaults]``."""
    raw = tomllib.loads(text)
    defaults = scenario.machine_defaults.model_dump()
    lines = []
    for i, line in enumerate(scenario.line):
        machines = []
        for j, _m in enumerate(line.machine):
            written = raw["line"][i]["machine"][j]
            machines.append(SimMachine(**{**defaults, **written}))
        lines.append(line.model_copy(update={"machine": machines}))
    return scenario.model_copy(update={"line": lines})

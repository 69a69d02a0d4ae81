"""The production side of ``genba.toml``: calendars, lines, products, cost rates, the reason
tree, and how a machine's signals become states and counts (docs/kpi.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genba.calendar import DAYS, Break, PlannedStop, Shift, ShiftCalendar
from genba.paths import check_asset_path
from genba.states import REASON_CATEGORIES, STATE_NAMES, MachineState, Reason
from genba.types import NS_PER_S


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hhmm(v: str) -> str:
    h, sep, m = v.partition(":")
    if not sep or not (h.isdigit() and m.isdigit() and int(h) < 24 and int(m) < 60):
        raise ValueError(f"expected a local time HH:MM such as '06:00', got {v!r}")
    return v


class BreakSettings(_Strict):
    """A planned break inside a shift, in the calendar's local time."""

    start: str = Field(description="Local time HH:MM.")
    minutes: float = Field(gt=0, description="Length in minutes.")

    _start = field_validator("start")(lambda cls, v: _hhmm(v))


class ShiftSettings(_Strict):
    """A shift in local time (``[[calendar.shift]]``; a scenario's ``[[shift]]``); ``end``
    before ``start`` crosses midnight."""

    name: str = Field(description="Shift name, e.g. early.")
    start: str = Field(description="Local start time HH:MM.")
    end: str = Field(description="Local end time HH:MM.")
    days: list[str] = Field(list(DAYS), description="Weekdays it starts on: mon … sun.")
    breaks: list[BreakSettings] = Field(default_factory=list, description="Planned breaks.")

    _times = field_validator("start", "end")(lambda cls, v: _hhmm(v))

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d not in DAYS]
        if bad:
            raise ValueError(f"unknown weekday {bad}; use {', '.join(DAYS)}")
        return v


class PlannedStopSettings(_Strict):
    """``[[calendar.planned_stop]]``: a stop planned ahead, in UTC."""

    start: datetime = Field(description="UTC start, e.g. 2026-01-07T06:00:00Z.")
    end: datetime = Field(description="UTC end.")
    reason: str = Field("planned", description="What it is for, e.g. maintenance.")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v

    @model_validator(mode="after")
    def _order(self) -> PlannedStopSettings:
        if self.end <= self.start:
            raise ValueError(f"planned stop ends ({self.end}) before it starts ({self.start})")
        return self


class CalendarSettings(_Strict):
    """``[[calendar]]``: shifts, breaks, holidays and planned stops of the lines that name
    it. Planned production time is derived from it (docs/kpi.md)."""

    name: str = Field(description="Name the lines refer to.")
    timezone: str = Field("UTC", description="Local time zone of the shifts, e.g. Europe/Berlin.")
    shift: list[ShiftSettings] = Field(default_factory=list, description="No shifts: 24/7.")
    holidays: list[date] = Field(default_factory=list, description="Local dates with no shifts.")
    planned_stop: list[PlannedStopSettings] = Field(
        default_factory=list, description="Planned stops (UTC ranges)."
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as 'Europe/Berlin'"
            ) from None
        return v

    def build(self) -> ShiftCalendar:
        shifts = [
            Shift(s.name, s.start, s.end, s.days, [Break(b.start, b.minutes) for b in s.breaks])
            for s in self.shift
        ]
        stops = [
            PlannedStop(
                int(p.start.timestamp() * NS_PER_S), int(p.end.timestamp() * NS_PER_S), p.reason
            )
            for p in self.planned_stop
        ]
        return ShiftCalendar(shifts, tz=self.timezone, holidays=self.holidays, planned_stops=stops)


class LineSettings(_Strict):
    """``[[line]]``: a production line: its calendar, constraint machine and crew."""

    path: str = Field(description="site/area/line.")
    calendar: str = Field("", description="Name of its [[calendar]] (default: 24/7 UTC).")
    constraint: str = Field(
        "", description="Name of the constraint machine (default: the longest ideal cycle)."
    )
    operators: float = Field(0.0, ge=0, description="Operators on the line while scheduled.")
    inventory_value: float | None = Field(
        None,
        gt=0,
        description="Average value of the stock this line holds and draws on (raw material, "
        "WIP, finished goods), from the ERP: inventory turnover is cost of goods sold over it. "
        "Without it there is no turnover (the machines alone do not see the stock).",
    )

    _path = field_validator("path")(lambda cls, v: check_asset_path(v, "line"))


class Product(_Strict):
    """A product and what it is worth: what a node's ``[[product]]`` and a simulator
    scenario's share."""

    name: str = Field(description="Product name.")
    price: float = Field(0.0, ge=0, description="Price of one good unit.")
    material_cost: float = Field(0.0, ge=0, description="Material cost of one unit started.")
    cycle_factor: float = Field(
        1.0, gt=0, description="Ideal cycle of this product over each machine's ideal cycle."
    )


class ProductSettings(Product):
    """``[[product]]``: what the lines make, by the code the ``product`` tag carries."""

    code: int = Field(ge=1, description="Code of the product in the machines' product tag.")


class CostSettings(_Strict):
    """``[costs]``: rates that turn time and energy into money (a simulator scenario's
    ``[costs]`` are these too, with the operators its lines have)."""

    currency: str = Field("EUR", description="Currency of all money figures.")
    energy_price_per_kwh: float = Field(0.0, ge=0, description="Price of one kWh.")
    labour_rate_per_h: float = Field(0.0, ge=0, description="Cost of one operator hour.")
    machine_rate_per_h: float = Field(
        0.0, ge=0, description="Machine hour rate (depreciation, upkeep) while scheduled."
    )


class ReasonSettings(_Strict):
    """``[[reason]]``: a reason code of the reason tree (category → reason)."""

    code: int = Field(description="Code as the reason tag or an operator gives it.")
    name: str = Field(description="Reason, e.g. jam.")
    category: str = Field(description="Category, e.g. breakdown, setup, material.")


class SignalSettings(_Strict):
    """``[machine.signals]``: which tags of the machine carry its state and counts, and how
    they are read (docs/kpi.md, "State tracking"). Tag names are the last level of the path."""

    mode: Literal["state_tag", "rules"] = Field(
        "state_tag",
        description="state_tag: the machine reports its state in a tag; rules: derive it "
        "from run_tag / speed_tag.",
    )
    state_tag: str = Field("state", description="Tag with the machine's state code.")
    state_codes: dict[str, str] = Field(
        default_factory=dict,
        description="Machine code → genba state (running, idle, starved, blocked, "
        "planned_stop, setup, down, small_stop); default: genba's own codes 1–8.",
    )
    run_tag: str = Field("", description="rules: tag that is non-zero while the machine runs.")
    speed_tag: str = Field("", description="rules: speed tag; running above min_speed.")
    min_speed: float = Field(0.0, description="rules: speed above which the machine runs.")
    reason_tag: str = Field("reason", description="Tag with the reason code ('' for none).")
    product_tag: str = Field("product", description="Tag with the product code ('' for none).")
    good_count_tag: str = Field("good_count", description="Counter of good parts.")
    reject_count_tag: str = Field("reject_count", description="Counter of rejected parts.")
    energy_tag: str = Field("energy", description="Energy counter in kWh ('' for none).")
    counter_max: int = Field(
        0, ge=0, description="Counters roll over after this value (e.g. 65535); 0: never."
    )
    debounce_s: float = Field(0.0, ge=0, description="States shorter than this are merged.")
    small_stop_s: float | None = Field(
        None,
        ge=0,
        description="Down periods shorter than this are small stops (default: 300 s in rules "
        "mode; off in state_tag mode, where the machine says which stops are small).",
    )
    startup_parts: int = Field(
        0, ge=0, description="Parts after a setup whose rejects are start-up rejects."
    )
    max_gap_s: float | None = Field(
        None,
        gt=0,
        description="A sample holds at most this long, then the time is unknown (for history "
        "from a source that sent cyclically and left no stale marks). Default: a sample "
        "holds until the next one or until its source is marked stale.",
    )

    @field_validator("state_codes")
    @classmethod
    def _codes(cls, v: dict[str, str]) -> dict[str, str]:
        for code, state in v.items():
            if not code.lstrip("-").isdigit():
                raise ValueError(f"state code {code!r} is not an integer")
            if state not in STATE_NAMES:
                raise ValueError(f"unknown state {state!r}; use one of {', '.join(STATE_NAMES)}")
        return v

    @model_validator(mode="after")
    def _rules(self) -> SignalSettings:
        if self.mode == "rules" and not (self.run_tag or self.speed_tag):
            raise ValueError("mode = 'rules' needs run_tag or speed_tag")
        return self

    def code_map(self) -> dict[int, int]:
        """Machine state code → :class:`MachineState` value."""
        if not self.state_codes:
            return {int(s): int(s) for s in MachineState}
        return {int(k): int(MachineState[v.upper()]) for k, v in self.state_codes.items()}


DEFAULT_REASONS = [
    ReasonSettings(code=int(r), name=r.name.lower(), category=REASON_CATEGORIES[r])
    for r in Reason
    if r is not Reason.NONE
]
"""The reason tree used when ``genba.toml`` has no ``[[reason]]``: the simulator's codes."""

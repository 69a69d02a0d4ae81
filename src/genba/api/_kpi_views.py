"""KPI answers as JSON, and the response models that describe them in ``/openapi.json``.

:class:`~genba.kpi.Kpi` answers with typed results (:mod:`genba.kpi._answers`: integer UTC
nanoseconds, raw numbers); here they become what the API, ``genba kpi --format json`` and the
report have always shown: ISO 8601 times (``start``, ``end``), milliseconds where a chart
wants them, a row's figures beside its entity and period.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from genba.kpi import KpiAnswer, Stop, Timeline
from genba.states import STATE_NAMES
from genba.timeparse import format_time
from genba.types import NS_PER_MS

_STATE_NAMES = np.array(("unknown", *STATE_NAMES))  # indexed by state code; 0 is unknown


def kpi_json(a: KpiAnswer) -> dict[str, Any]:
    """An OEE, losses, reliability or cost answer as the API sends it."""
    return {
        "asset": a.asset,
        "start": format_time(a.span.start_ns),
        "end": format_time(a.span.end_ns),
        "by": a.by,
        "rows": [
            {
                "period": r.period,
                "start": format_time(r.start_ns),
                "end": format_time(r.end_ns),
                "entity": r.entity,
                "level": r.level,
            }
            | r.figures
            for r in a.rows
        ],
        "not_counted": [asdict(n) for n in a.not_counted],
        "warnings": [asdict(w) for w in a.warnings],
    } | a.extra


def timeline_json(t: Timeline) -> dict[str, Any]:
    return {
        "asset": t.asset,
        "start": format_time(t.span.start_ns),
        "end": format_time(t.span.end_ns),
        "machines": [
            {
                "machine": m.machine,
                "start_ms": (m.start_ns // NS_PER_MS).tolist(),
                "end_ms": (m.end_ns // NS_PER_MS).tolist(),
                "state": _STATE_NAMES[m.state].tolist(),
                "reason_code": m.reason_code.tolist(),
            }
            for m in t.machines
        ],
        "not_counted": [asdict(n) for n in t.not_counted],
    }


def stop_json(s: Stop) -> dict[str, Any]:
    return {
        "id": s.id,
        "machine": s.machine,
        "start": format_time(s.start_ns),
        "end": format_time(s.end_ns),
        "start_ms": s.start_ns // NS_PER_MS,
        "minutes": s.minutes,
        "state": s.state.name.lower(),
        "reason_code": s.reason_code,
        "reason": s.reason,
        "category": s.category,
        "entered_by_operator": s.entered_by_operator,
    }


# -- response models ---------------------------------------------------------------------------
# Rows allow extra keys: a figure added to the KPIs is sent before its model names it.

Ratio = float | None


class NotCountedOut(BaseModel):
    machine: str
    reason: str = Field(description="Why none of its time could be counted, with the fix.")


class WarningOut(BaseModel):
    machine: str
    kind: str = Field(description="performance_above_100")
    performance: float
    message: str = Field(description="What is suspect and the setting that fixes it.")


class RowOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    period: str = Field(description="'all', a shift, a plant-local day or hour.")
    start: str = Field(description="ISO 8601, UTC.")
    end: str
    entity: str = Field(description="Machine, line or asset path ('all' for every machine).")
    level: str = Field(description="machine, line, area, site or all.")


class ConstraintOut(BaseModel):
    machine: str
    availability: Ratio = None
    performance: Ratio = None
    quality: Ratio = None
    oee: Ratio = None


class OeeRowOut(RowOut):
    availability: Ratio = Field(description="Run time / planned time (a fraction).")
    performance: Ratio = Field(description="Net run time / run time.")
    quality: Ratio = Field(description="Fully productive time / net run time.")
    oee: Ratio = Field(description="Fully productive time / planned time.")
    teep: Ratio = Field(description="Fully productive time / all time with data.")
    utilisation: Ratio
    waterfall_min: dict[str, float] = Field(description="The time waterfall, minutes.")
    losses_min: dict[str, float] = Field(description="The six big losses, minutes.")
    counts: dict[str, float] = Field(description="good, reject, total, startup_rejects, ...")
    constraint: ConstraintOut | None = Field(None, description="Lines: their constraint machine.")


class LossesRowOut(RowOut):
    losses_min: dict[str, float]


class ReliabilityRowOut(RowOut):
    failures: int
    mtbf_h: float | None
    mttr_min: float | None
    throughput_per_h: float | None
    avg_cycle_s: float | None
    ideal_cycle_s: float | None
    first_pass_yield: Ratio
    count: float
    target: float | None
    count_vs_target: Ratio


class CostRowOut(RowOut):
    currency: str
    costs: dict[str, float] = Field(description="material, energy, labour, machine_hours.")
    total_cost: float
    good_units: float
    cost_per_good_unit: float | None
    revenue: float
    margin: float
    energy_kwh: float
    loss_money: dict[str, dict[str, float | None]]
    scrap_units: float
    scrap_material: float | None
    energy_not_producing: float
    by_product: list[dict[str, Any]]
    wip_avg_units: float | None
    wip_avg_value: float | None
    inventory_turnover: float | None
    inventory_turnover_per_year: float | None
    material_of_goods_finished: float | None


class AnswerOut(BaseModel):
    asset: str
    start: str
    end: str
    by: str | None
    not_counted: list[NotCountedOut]
    warnings: list[WarningOut]


class OeeOut(AnswerOut):
    rows: list[OeeRowOut]


class ParetoOut(BaseModel):
    state: str
    reason_code: int
    reason: str
    category: str
    minutes: float


class LossesOut(AnswerOut):
    rows: list[LossesRowOut]
    pareto: list[ParetoOut] = Field(description="Stop time by state and reason, largest first.")


class ReliabilityOut(AnswerOut):
    rows: list[ReliabilityRowOut]
    failures_by_reason: dict[str, dict[str, float]]


class CostOut(AnswerOut):
    rows: list[CostRowOut]
    currency: str


class MachineRunsOut(BaseModel):
    machine: str
    start_ms: list[int]
    end_ms: list[int]
    state: list[str]
    reason_code: list[int]


class TimelineOut(BaseModel):
    asset: str
    start: str
    end: str
    machines: list[MachineRunsOut]
    not_counted: list[NotCountedOut]


class StopOut(BaseModel):
    id: str = Field(description="What POST /api/downtime/{id}/reason takes.")
    machine: str
    start: str
    end: str
    start_ms: int
    minutes: float
    state: str
    reason_code: int
    reason: str
    category: str
    entered_by_operator: bool


class ReasonSetOut(BaseModel):
    id: str
    code: int
    stored: bool

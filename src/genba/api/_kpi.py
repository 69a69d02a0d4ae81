"""KPI routes: OEE, losses, reliability, cost, and the downtime list with operator reasons."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from genba.api._kpi_views import (
    CostOut,
    LossesOut,
    OeeOut,
    ReasonSetOut,
    ReliabilityOut,
    StopOut,
    TimelineOut,
    kpi_json,
    stop_json,
    timeline_json,
)
from genba.config import ProductSettings, ReasonSettings
from genba.node import Node

Asset = Annotated[
    str,
    Query(description="Site, area, line or machine path ('' for every machine)."),
]
Start = Annotated[
    str | None, Query(description="ISO 8601, epoch ms, 'now' or relative like -8h (default -24h).")
]
End = Annotated[str | None, Query(description="Like start; default now.")]
By = Annotated[
    str | None, Query(description="Rows per shift, day (plant local) or hour; default one row.")
]


class ReasonBody(BaseModel):
    """An operator's reason for a stop: a code of the reason tree."""

    code: int = Field(description="Reason code (GET /api/reasons).")


def router(node: Node) -> APIRouter:
    """The node's KPIs (:class:`~genba.kpi.Kpi`) and the downtime list."""
    app = APIRouter(tags=["kpi"])
    kpi = node.kpi

    @app.get("/api/kpi/oee", response_model=OeeOut)
    def oee(
        asset: Asset = "", start: Start = None, end: End = None, by: By = None
    ) -> dict[str, Any]:
        """Availability, performance, quality, OEE, TEEP, the time waterfall and the six big
        losses per machine, line and asset (lines also from their constraint machine)."""
        return kpi_json(kpi.oee(asset, start, end, by))

    @app.get("/api/kpi/losses", response_model=LossesOut)
    def losses(
        asset: Asset = "", start: Start = None, end: End = None, by: By = None
    ) -> dict[str, Any]:
        """The six big losses in minutes, and a Pareto of stop time by state and reason."""
        return kpi_json(kpi.losses(asset, start, end, by))

    @app.get("/api/kpi/reliability", response_model=ReliabilityOut)
    def reliability(
        asset: Asset = "", start: Start = None, end: End = None, by: By = None
    ) -> dict[str, Any]:
        """MTBF, MTTR, failures by reason, throughput, cycle time, first pass yield, counts
        against target."""
        return kpi_json(kpi.reliability(asset, start, end, by))

    @app.get("/api/kpi/cost", response_model=CostOut)
    def cost(
        asset: Asset = "", start: Start = None, end: End = None, by: By = None
    ) -> dict[str, Any]:
        """Per line: costs by kind, cost per good unit, money of each loss, margin per product,
        average WIP and inventory turnover."""
        return kpi_json(kpi.cost(asset, start, end, by))

    @app.get("/api/kpi/timeline", response_model=TimelineOut)
    def timeline(asset: Asset = "", start: Start = None, end: End = None) -> dict[str, Any]:
        """Each machine's state runs over the range (columnar): the line view's Gantt chart."""
        return timeline_json(kpi.timeline(asset, start, end))

    @app.get("/api/products", response_model=list[ProductSettings])
    def products() -> list[dict[str, Any]]:
        """The products of genba.toml: code (as the product tag carries it), name, price,
        material cost, cycle factor."""
        return [p.model_dump() for p in node.config.product]

    @app.get("/api/reasons", response_model=list[ReasonSettings])
    def reasons() -> list[dict[str, Any]]:
        """The reason tree: code, name and category of every reason."""
        return [r.model_dump() for r in node.config.reasons()]

    @app.get("/api/downtime", response_model=list[StopOut])
    def downtime(
        asset: Asset = "",
        start: Start = None,
        end: End = None,
        states: Annotated[str, Query(description="Which stops, comma-separated.")] = "down,setup",
    ) -> list[dict[str, Any]]:
        """Stops with id, machine, times, state and reason (from the machine or an operator)."""
        return [stop_json(s) for s in kpi.downtime(asset, start, end, states)]

    @app.post("/api/downtime/{downtime_id}/reason", response_model=ReasonSetOut)
    async def set_reason(downtime_id: str, body: ReasonBody) -> dict[str, Any]:
        """Give a stop a reason from the reason tree. It is stored as a sample of the
        machine's ``downtime_reason`` tag at the stop's start, so it is kept, exported and
        forwarded like any reading; KPIs use it from the next query on."""
        batch = await anyio.to_thread.run_sync(kpi.reason_sample, downtime_id, body.code)
        await node.publish_durable(batch, refuse=True)
        return {"id": downtime_id, "code": body.code, "stored": True}

    return app

"""Alarm routes: the list, the history, operator actions, rules added through the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from genba.alarms import AlarmRule
from genba.node import AlarmService, Node


class Operator(BaseModel):
    user: str = Field("", description="Who acts, for the history.")


class Shelve(Operator):
    minutes: float = Field(gt=0, le=7 * 24 * 60, description="How long the alarm stays shelved.")


def install(app: FastAPI, node: Node) -> None:
    service = node.component(AlarmService)
    engine = service.engine

    @app.get("/api/alarms", tags=["alarms"])
    def alarms() -> list[dict[str, Any]]:
        """Every alarm: rule, ISA-18.2 state, whether its condition is active, last value;
        urgent first."""
        return engine.alarms()

    @app.get("/api/alarms/history", tags=["alarms"])
    def history(
        limit: Annotated[int, Query(ge=1, le=10_000, description="Newest first.")] = 200,
    ) -> list[dict[str, Any]]:
        """Alarm events (activated, cleared, acknowledged, shelved, unshelved), newest first."""
        return service.history(limit)

    @app.post("/api/alarms", tags=["alarms"])
    def add(rule: AlarmRule) -> dict[str, Any]:
        """Add a rule (same fields as ``[[alarm]]``); kept in the record log across restarts."""
        service.add_rule(rule)
        return next(a for a in engine.alarms() if a["name"] == rule.key)

    @app.delete("/api/alarms/{name:path}", tags=["alarms"])
    def remove(name: str) -> dict[str, Any]:
        """Remove a rule that was added through the API."""
        service.remove_rule(name)
        return {"name": name, "removed": True}

    @app.post("/api/alarms/{name:path}/ack", tags=["alarms"])
    def ack(name: str, body: Operator) -> dict[str, Any]:
        """Acknowledge an unacknowledged alarm."""
        return engine.acknowledge(name, node.clock.now_ns(), body.user)

    @app.post("/api/alarms/{name:path}/shelve", tags=["alarms"])
    def shelve(name: str, body: Shelve) -> dict[str, Any]:
        """Shelve an alarm for some minutes: not announced until the shelf expires."""
        return engine.shelve(name, body.minutes, node.clock.now_ns(), body.user)

    @app.post("/api/alarms/{name:path}/unshelve", tags=["alarms"])
    def unshelve(name: str, body: Operator) -> dict[str, Any]:
        """Bring a shelved alarm back before its shelf expires."""
        return engine.unshelve(name, node.clock.now_ns(), body.user)

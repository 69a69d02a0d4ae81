"""Alarm routes: the list, the history, operator actions, rules added through the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from genba.alarms import AlarmRule
from genba.node import AlarmService, Node


class Operator(BaseModel):
    user: str = Field("", description="Who acts, for the history.")


class Shelve(Operator):
    minutes: float = Field(gt=0, le=7 * 24 * 60, description="How long the alarm stays shelved.")


class AlarmOut(BaseModel):
    """An alarm: its rule, ISA-18.2 state and condition."""

    name: str = Field(description="The rule's key: what the action routes take.")
    tag: str
    kind: str = Field(description="high, low, rate, stuck or no_data.")
    priority: str
    message: str
    state: str = Field(description="normal, unack, acked, rtn_unack or shelved (ISA-18.2).")
    active: bool = Field(description="Whether its condition holds now.")
    since_ms: int | None = Field(description="When the condition last changed.")
    shelved_until_ms: int | None
    value: float | None = Field(description="The tag's last value the rule saw.")


class AlarmEventOut(BaseModel):
    """An alarm event, as kept in the history and sent to notifiers."""

    model_config = ConfigDict(extra="allow")

    alarm: str
    event: str = Field(description="activated, cleared, acknowledged, shelved, unshelved.")
    state: str = Field(description="The alarm's state after the event.")
    time: str = Field(description="ISO 8601, UTC.")
    ts_ms: int
    tag: str
    priority: str
    message: str
    user: str | None = Field(None, description="Who acted (operator actions).")


class RemovedOut(BaseModel):
    name: str
    removed: bool


def router(node: Node) -> APIRouter:
    """The alarms of the node's :class:`AlarmService`."""
    r = APIRouter(tags=["alarms"])
    service = node.component(AlarmService)
    engine = service.engine

    @r.get("/api/alarms", response_model=list[AlarmOut])
    def alarms() -> list[dict[str, Any]]:
        """Every alarm: rule, ISA-18.2 state, whether its condition is active, last value;
        urgent first."""
        return engine.alarms()

    @r.get("/api/alarms/history", response_model=list[AlarmEventOut])
    def history(
        limit: Annotated[int, Query(ge=1, le=10_000, description="Newest first.")] = 200,
    ) -> list[dict[str, Any]]:
        """Alarm events (activated, cleared, acknowledged, shelved, unshelved), newest first."""
        return service.history(limit)

    @r.post("/api/alarms", response_model=AlarmOut)
    def add(rule: AlarmRule) -> dict[str, Any]:
        """Add a rule (same fields as ``[[alarm]]``); kept in the record log across restarts."""
        service.add_rule(rule)
        return next(a for a in engine.alarms() if a["name"] == rule.key)

    @r.delete("/api/alarms/{name:path}", response_model=RemovedOut)
    def remove(name: str) -> dict[str, Any]:
        """Remove a rule that was added through the API."""
        service.remove_rule(name)
        return {"name": name, "removed": True}

    @r.post("/api/alarms/{name:path}/ack", response_model=AlarmEventOut)
    def ack(name: str, body: Operator) -> dict[str, Any]:
        """Acknowledge an unacknowledged alarm."""
        return engine.acknowledge(name, node.clock.now_ns(), body.user)

    @r.post("/api/alarms/{name:path}/shelve", response_model=AlarmEventOut)
    def shelve(name: str, body: Shelve) -> dict[str, Any]:
        """Shelve an alarm for some minutes: not announced until the shelf expires."""
        return engine.shelve(name, body.minutes, node.clock.now_ns(), body.user)

    @r.post("/api/alarms/{name:path}/unshelve", response_model=AlarmEventOut)
    def unshelve(name: str, body: Operator) -> dict[str, Any]:
        """Bring a shelved alarm back before its shelf expires."""
        return engine.unshelve(name, node.clock.now_ns(), body.user)

    return r

"""Routes of the node itself: health, settings, the asset model, dead letters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from genba import plugins
from genba.config import settings_view
from genba.node import Node


class HealthOut(BaseModel):
    """The node's health; every component adds its own section under its name."""

    model_config = ConfigDict(extra="allow")

    status: str = Field(description="ok, degraded (see problems) or stopped.")
    problems: list[str] = Field(description="What keeps the node from working, each with its fix.")
    node: str
    version: str
    now_ms: int
    uptime_s: float
    tags: int
    connectors: list[dict[str, Any]]


class SectionOut(BaseModel):
    key: str
    title: str
    component: str


class SettingsOut(BaseModel):
    settings: dict[str, Any] = Field(description="The effective settings; secrets are ***.")
    sections: list[SectionOut] = Field(description="The component that reads each section.")
    components: list[str] = Field(description="The components this node runs.")
    from_environment: list[str] = Field(description="GENBA_… variables that set values.")


class AssetOut(BaseModel):
    path: str
    site: str
    area: str
    line: str
    description: str
    ideal_cycle_time_s: float | None
    max_gap_s: float | None


class DeadLetterOut(BaseModel):
    time: str
    source: str
    topic: str
    reason: str
    payload: str = Field(description="The first 2,048 bytes, undecodable bytes escaped.")
    payload_bytes: int


class DeadLettersOut(BaseModel):
    counts: dict[str, int] = Field(description="Dead letters per connector since the start.")
    records: list[DeadLetterOut] = Field(description="Newest first, from the record log.")


def router(node: Node) -> APIRouter:
    """Health, the asset model and the dead letters of ``node``."""
    r = APIRouter()

    @r.get("/api/health", tags=["node"], response_model=HealthOut)
    def health() -> dict[str, Any]:
        """Node status, historian and bus counters, connector health."""
        return node.health()

    @r.get("/api/settings", tags=["node"], response_model=SettingsOut)
    def settings() -> dict[str, Any]:
        """The node's effective settings (every secret shown as ***), the component that
        reads each section, and the GENBA_… environment variables that set values."""
        return {
            "settings": settings_view(node.config),
            "sections": [
                {"key": s.key, "title": s.title, "component": name}
                for name, cls in plugins.components()
                for s in cls.sections
            ],
            "components": list(node.components),
            "from_environment": list(node.config.from_environment),
        }

    @r.get("/api/assets", tags=["node"], response_model=list[AssetOut])
    def assets() -> list[dict[str, Any]]:
        """The asset model: machines in config order with their ISA-95 levels."""
        return [
            {
                "path": m.path,
                "site": m.path.split("/")[0],
                "area": m.path.split("/")[1],
                "line": m.line,
                "description": m.description,
                "ideal_cycle_time_s": m.ideal_cycle_time_s,
                "max_gap_s": m.signals.max_gap_s,
            }
            for m in node.config.machine
        ]

    @r.get("/api/deadletter", tags=["node"], response_model=DeadLettersOut)
    def deadletter(
        source: Annotated[str | None, Query(description="Only this connector's.")] = None,
        limit: Annotated[
            int, Query(ge=1, le=1000, description="Most records, newest first.")
        ] = 100,
    ) -> dict[str, Any]:
        """Input the connectors could not use, newest first, with the reason; and counts."""
        return {
            "counts": dict(node.dead_letters.counts),
            "records": [r.body for r in node.records.read("deadletter", key=source, limit=limit)],
        }

    return r

"""Model routes: the registry's versions (docs/ai.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from genba.ai import versions
from genba.node import Node


class ModelVersionOut(BaseModel):
    """One trained version of a model for one machine (the model's bytes are not sent)."""

    name: str
    machine: str
    version: int
    detector: str = Field(description="Detector kind (knn, mad, pca).")
    params: dict[str, Any] = Field(description="Its settings.")
    signals: list[str] = Field(description="The tags it reads, in its column order.")
    used: list[bool] = Field(description="Which signals the model uses (not constant or drifting).")
    trained_from_ns: int
    trained_to_ns: int
    rows: int = Field(description="Training rows (running time on the grid).")
    metrics: dict[str, Any] = Field(description="Threshold, training alarm share, score quantiles.")
    libraries: dict[str, str]
    sha256: str = Field(description="Of the model's bytes; checked whenever it is loaded.")
    created_ns: int
    mode: str = Field("", description="The tag whose value is the operating mode ('' for none).")


def router(node: Node) -> APIRouter:
    r = APIRouter(tags=["models"])

    @r.get("/api/models", response_model=list[ModelVersionOut])
    def models(
        name: Annotated[str | None, Query(description="Only this model's versions.")] = None,
    ) -> list[dict[str, Any]]:
        """Every trained version in the model registry, oldest first."""
        return [v.summary() for v in versions(node.store, name)]

    return r

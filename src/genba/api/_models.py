"""Model routes: the registry's versions (docs/ai.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from genba.ai import Decision, ModelVersion, decisions, in_service, pin, rollback, versions
from genba.errors import ModelError
from genba.node import Node, RulWatch
from genba.node._ai import AnomalyWatch


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
    as_of_ns: int = Field(0, description="When it was trained, in the data's time (a challenger's training end plus the days it was judged on).")  # fmt: skip
    in_service: bool = Field(False, description="This version is the one the node uses.")


class DecisionOut(BaseModel):
    """Why a newly trained version (the challenger) did or did not replace the one in
    service (the champion), with the evidence (docs/ai.md, 'Champion and challenger')."""

    name: str
    machine: str
    challenger: int
    champion: int | None = Field(description="null: the model's first version.")
    promoted: bool
    reason: str
    metric: str = Field(description="The loss compared: mae_h (RUL), balanced_error (detectors).")  # fmt: skip
    champion_loss: float | None
    challenger_loss: float | None
    improvement: float | None = Field(description="Mean paired improvement, champion's loss − challenger's.")  # fmt: skip
    ci_low: float | None = Field(description="95 % bootstrap interval of the improvement, low end.")  # fmt: skip
    ci_high: float | None
    rows: int
    groups: int = Field(description="Lives or days the bootstrap resampled.")
    eval_from_ns: int | None = Field(description="The unseen data compared on, from (UTC ns).")
    eval_to_ns: int | None
    created_ns: int


class PinIn(BaseModel):
    machine: str = Field(description="The machine's path.")
    version: int | None = Field(description="The version to put in service; null: unpin (the decisions rule again).")  # fmt: skip
    note: str = Field("", max_length=500, description="Why, for the record.")


class RollbackIn(BaseModel):
    machine: str = Field(description="The machine's path.")


class ServedOut(BaseModel):
    name: str
    machine: str
    version: int | None = Field(description="The version now in service (null: none).")


class RulOut(BaseModel):
    """A machine's remaining useful life now (docs/ai.md, "Remaining useful life"), or why
    it has none."""

    machine: str
    model: str = Field(description="The [[rul]] that estimates it.")
    version: int | None = Field(None, description="The model version that estimated it.")
    at_ns: int | None = Field(None, description="The newest running row it is from (UTC ns).")
    rul_h: float | None = Field(None, description="Remaining running hours to a wear-out failure (at most cap_h).")  # fmt: skip
    low_h: float | None = Field(None, description="Its 10 % quantile, running hours.")
    high_h: float | None = Field(None, description="Its 90 % quantile, running hours.")
    p_fail: float | None = Field(None, description="Probability of a failure within horizon_h running hours.")  # fmt: skip
    horizon_h: float | None = None
    age_h: float | None = Field(None, description="Running hours since the last wear-out repair (null: none in the history read).")  # fmt: skip
    running_share: float | None = Field(None, description="Share of the last week the machine ran: turns running hours into a date.")  # fmt: skip
    plan_before_ns: int | None = Field(None, description="Plan maintenance before this time (UTC ns): when low_h running hours will have passed at the running share.")  # fmt: skip
    plan_before_local: str | None = Field(None, description="plan_before_ns in the plant's time zone (its line's calendar), ISO 8601.")  # fmt: skip
    alarm: bool | None = Field(None, description="p_fail is above the model's alarm_probability.")  # fmt: skip
    last_failure_ns: int | None = Field(None, description="Start of the newest failure in the history read (UTC ns).")  # fmt: skip
    problem: str | None = Field(None, description="Why there is no estimate (e.g. not enough failures to learn from).")  # fmt: skip


def router(node: Node) -> APIRouter:
    r = APIRouter(tags=["models"])

    @r.get("/api/models", response_model=list[ModelVersionOut])
    def models(
        name: Annotated[str | None, Query(description="Only this model's versions.")] = None,
    ) -> list[dict[str, Any]]:
        """Every trained version in the model registry, oldest first, with which one is in
        service for its machine."""
        return _with_service(node, versions(node.store, name))

    @r.get("/api/models/decisions", response_model=list[DecisionOut])
    def model_decisions(
        name: Annotated[str | None, Query(description="Only this model's decisions.")] = None,
    ) -> list[Decision]:
        """Every champion/challenger decision with its evidence, oldest first."""
        return decisions(node.store, name)

    @r.post("/api/models/{name}/pin", response_model=ServedOut)
    def pin_version(name: str, body: PinIn) -> dict[str, Any]:
        """Put a version in service over any decision (version null: unpin); the node uses
        it from its next tick."""
        if not versions(node.store, name, body.machine):
            raise ModelError(f"model {name} has no version for {body.machine}: train it first")
        pin(node.store, name, body.machine, body.version, node.clock.now_ns(), body.note)
        return _served(node, name, body.machine)

    @r.post("/api/models/{name}/rollback", response_model=ServedOut)
    def rollback_version(name: str, body: RollbackIn) -> dict[str, Any]:
        """Pin the version that was in service before the current one."""
        rollback(node.store, name, body.machine, node.clock.now_ns())
        return _served(node, name, body.machine)

    @r.get("/api/rul", response_model=list[RulOut])
    def rul(
        machine: Annotated[str | None, Query(description="Only this machine (its path).")] = None,
    ) -> list[dict[str, Any]]:
        """Each machine's remaining useful life as its [[rul]] model last estimated it, with
        the date to plan maintenance before; or why it has none."""
        try:
            watch = node.component(RulWatch)
        except KeyError:
            return []
        return [row for row in watch.rows() if machine is None or row["machine"] == machine]

    return r


def _with_service(node: Node, found: list[ModelVersion]) -> list[dict[str, Any]]:
    """Each version's summary, marked where it is the one in service for its machine."""
    serving: dict[tuple[str, str], int | None] = {}
    for v in found:
        if (v.name, v.machine) not in serving:
            s = in_service(node.store, v.name, v.machine)
            serving[(v.name, v.machine)] = None if s is None else s.version
    return [v.summary() | {"in_service": serving[(v.name, v.machine)] == v.version} for v in found]  # fmt: skip


def _served(node: Node, name: str, machine: str) -> dict[str, Any]:
    """Tell the node's watches to use the version now in service; which one it is."""
    for cls in (AnomalyWatch, RulWatch):
        try:
            node.component(cls).serve(name, machine)  # type: ignore[attr-defined]
        except KeyError:
            continue
    v = in_service(node.store, name, machine)
    return {"name": name, "machine": machine, "version": None if v is None else v.version}

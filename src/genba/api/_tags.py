"""Routes of the tags: the list, history (samples, resample, value, last) and writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as FastApiPath
from pydantic import BaseModel, Field

from genba.api import _errors, _views
from genba.api._views import Columns
from genba.node import Node, WriteResult
from genba.timeparse import format_time

TagPath = Annotated[
    str,
    FastApiPath(
        description="Tag path, e.g. site/area/line/machine/signal.",
        examples=["berlin/packaging/line1/filler/motor_current"],  # a tag of the demo plant
    ),
]


class WriteRequest(BaseModel):
    value: float = Field(description="The new value, in the tag's unit.", allow_inf_nan=False)


class WriteAnswer(BaseModel):
    """What a write did."""

    id: str = Field(description="The command's id (record log: command, command.result).")
    path: str
    connector: str = Field(description="The connector that owns the tag and wrote it.")
    requested: float
    value: float = Field(description="What the device holds now, read back.")
    confirmed: bool = Field(description="value equals requested (to float32 precision).")
    time: str = Field(description="When it was read back (ISO 8601, UTC).")
    origin: str

    @classmethod
    def of(cls, r: WriteResult) -> WriteAnswer:
        return cls(
            id=r.id, path=r.path, connector=r.connector, requested=r.requested, value=r.value,
            confirmed=r.confirmed, time=format_time(r.ts_ns), origin=r.origin,
        )  # fmt: skip


def router(node: Node) -> APIRouter:
    """History, ingest and export: the tags of ``node``; history endpoints are plain functions,
    so FastAPI runs them in worker threads and a long query never blocks the live stream."""
    r = APIRouter()
    history = node.history

    @r.get("/api/tags", tags=["tags"], response_model=list[_views.TagOut])
    def tags(
        pattern: Annotated[
            str, Query(description="MQTT-style filter: '+' one level, '#' the rest.")
        ] = "#",
    ) -> list[dict[str, Any]]:
        """Every tag matching ``pattern`` with unit, limits and last sample."""
        return [_views.tag_json(t) for t in history.tags(pattern)]

    # Column answers can hold a million values: they are encoded as built (Columns), and
    # their models only describe them (validating them would cost 15 % of a week's page).
    @r.get(
        "/api/tags/{path:path}/samples",
        tags=["tags"],
        response_class=Columns,
        responses={200: {"model": _views.RawSamplesOut | _views.BucketsOut}},
    )
    def samples(
        path: TagPath,
        start: Annotated[
            str | None,
            Query(description="ISO 8601, epoch ms, 'now' or relative like -15m (default -1h)."),
        ] = None,
        end: Annotated[str | None, Query(description="Like start; default now.")] = None,
        every: Annotated[
            str | None, Query(description="Bucket size (1m, 10s…): aggregates instead of raw.")
        ] = None,
        agg: Annotated[
            str,
            Query(
                description="Aggregates, comma-separated: avg,min,max,count,first,last,sum, and "
                "twa (time-weighted average)."
            ),
        ] = "avg",
        limit: Annotated[int | None, Query(description="Most raw samples to return.")] = None,
        after: Annotated[
            str | None, Query(description="The 'next' of the previous page: the page after it.")
        ] = None,
    ) -> Columns:
        """Raw samples of one tag in a range, or time-bucket aggregates with ``every``."""
        h = history.samples(
            path, start=start, end=end, every=every, agg=agg, limit=limit, after=after
        )
        return Columns(_views.history_json(h))

    @r.get("/api/tags/{path:path}/resample", tags=["tags"], response_model=_views.ResampledOut)
    def resample(
        path: TagPath,
        step: Annotated[str, Query(description="Grid step: 1s, 1m, 1h…")],
        method: Annotated[
            str, Query(description="step: the value holding; linear: interpolated.")
        ] = "step",
        start: Annotated[str | None, Query(description="Like samples; default -1h.")] = None,
        end: Annotated[str | None, Query(description="Like start; default now.")] = None,
    ) -> Columns:
        """One tag on a regular, epoch-aligned grid; null where nothing is known."""
        r = history.resample(path, step=step, method=method, start=start, end=end)
        return Columns(_views.resampled_json(r))

    @r.get("/api/tags/{path:path}/value", tags=["tags"], response_model=_views.ValueOut)
    def value(
        path: TagPath,
        at: Annotated[str, Query(description="ISO 8601, epoch ms, now, or -15m.")],
    ) -> dict[str, Any]:
        """The value holding at a time: the last good sample at or before it (null if none)."""
        return _views.value_json(history.value(path, at))

    @r.get("/api/tags/{path:path}/last", tags=["tags"], response_model=_views.LastOut)
    def last(path: TagPath) -> dict[str, Any]:
        """The newest sample of one tag."""
        return _views.last_json(history.last(path))

    @r.post("/api/tags/{path:path}/write", tags=["tags"], responses=_errors.WRITE_RESPONSES)
    async def write(path: TagPath, body: WriteRequest) -> WriteAnswer:
        """Write a value to the device behind a writable tag (``[[connector]] writable``) and
        read it back: ``value`` is what the device holds now, ``confirmed`` whether that is
        the value asked for."""
        result = await node.write(path, body.value, origin="api")
        return WriteAnswer.of(result)

    return r

"""The FastAPI app of a node: health, tags, history and the live WebSocket."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, FastAPI, Query, Request, WebSocket
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genba import plugins, web
from genba._version import __version__
from genba.api import _alarms, _errors, _kpi, _views
from genba.api._errors import RequestTimeout, RequestTooLarge
from genba.api._live import live_stream
from genba.config import settings_view
from genba.errors import QueryError
from genba.node import Node, WriteResult, ingest
from genba.node._export import export_tables, write_file
from genba.timeparse import format_time

EPOCH = "1970-01-01T00:00:00Z"
TagPath = Annotated[
    str,
    FastApiPath(
        description="Tag path, e.g. site/area/line/machine/signal.",
        examples=["berlin/packaging/line1/filler/motor_current"],  # a tag of the demo plant
    ),
]
EXPORT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
BODY_TIMEOUT_S = 60.0
"""Longest a client may take to send a request body; then 408."""


async def read_body(request: Request) -> bytes:
    """The body of ``request``; 408 when it does not arrive within :data:`BODY_TIMEOUT_S`
    (its size is capped for every request by :class:`BodyLimit`)."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            return await request.body()
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {BODY_TIMEOUT_S:g} s; send it again."
        ) from None


class BodyLimit:
    """ASGI middleware: no request body over ``max_bytes`` is read, on any endpoint. One
    that says its length is refused with 413 at once; one sent in chunks fails with 413 as
    soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> RequestTooLarge:
        return RequestTooLarge(
            f"The request body is over [node] max_body_mb = {self.max_bytes / 2**20:g} MB; "
            "send it in parts, or raise max_body_mb in genba.toml."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or count the body of one request (the counted case raises inside the
        app, where the error handlers turn it into the 413)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:  # refused before it is read
            body = _errors.error_body(413, "too_large", str(self._too_large()))
            await JSONResponse(body, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, counted, send)


def create_app(node: Node) -> FastAPI:
    """The API of ``node``; history endpoints are plain functions, so FastAPI runs them in
    worker threads and a long query never blocks the live stream."""
    app = FastAPI(
        title="genba",
        version=__version__,
        description="Historian and live data of one genba node. Times are UTC; `*_ms` fields "
        "are integer milliseconds since the Unix epoch.",
        docs_url=None,  # served by genba.web from a package: no CDN, works offline
        redoc_url=None,
        responses=_errors.ERROR_RESPONSES,
    )
    _errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=int(node.config.node.max_body_mb * 2**20))
    app.include_router(_node_router(node))
    app.include_router(_tags_router(node))
    app.include_router(_transfer_router(node))
    _kpi.install(app, node)
    _alarms.install(app, node)
    app.include_router(_live_router(node))
    web.mount(app)
    return app


def _node_router(node: Node) -> APIRouter:
    """Health, the asset model and the dead letters of ``node``."""
    router = APIRouter()

    @router.get("/api/health", tags=["node"])
    def health() -> dict[str, Any]:
        """Node status, historian and bus counters, connector health."""
        return node.health()

    @router.get("/api/settings", tags=["node"])
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

    @router.get("/api/assets", tags=["node"])
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

    @router.get("/api/deadletter", tags=["node"])
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

    return router


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


def _tags_router(node: Node) -> APIRouter:
    """History, ingest and export: the tags of ``node``; history endpoints are plain functions,
    so FastAPI runs them in worker threads and a long query never blocks the live stream."""
    router = APIRouter()
    history = node.history

    @router.get("/api/tags", tags=["tags"], response_model=list[_views.TagOut])
    def tags(
        pattern: Annotated[
            str, Query(description="MQTT-style filter: '+' one level, '#' the rest.")
        ] = "#",
    ) -> JSONResponse:
        """Every tag matching ``pattern`` with unit, limits and last sample."""
        return JSONResponse([_views.tag_json(t) for t in history.tags(pattern)])

    # Column answers can hold a million values: they are sent as built (JSONResponse), the
    # response model only describes them.
    @router.get(
        "/api/tags/{path:path}/samples",
        tags=["tags"],
        response_model=_views.RawSamplesOut | _views.BucketsOut,
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
    ) -> JSONResponse:
        """Raw samples of one tag in a range, or time-bucket aggregates with ``every``."""
        h = history.samples(
            path, start=start, end=end, every=every, agg=agg, limit=limit, after=after
        )
        return JSONResponse(_views.history_json(h))

    @router.get("/api/tags/{path:path}/resample", tags=["tags"], response_model=_views.ResampledOut)
    def resample(
        path: TagPath,
        step: Annotated[str, Query(description="Grid step: 1s, 1m, 1h…")],
        method: Annotated[
            str, Query(description="step: the value holding; linear: interpolated.")
        ] = "step",
        start: Annotated[str | None, Query(description="Like samples; default -1h.")] = None,
        end: Annotated[str | None, Query(description="Like start; default now.")] = None,
    ) -> JSONResponse:
        """One tag on a regular, epoch-aligned grid; null where nothing is known."""
        r = history.resample(path, step=step, method=method, start=start, end=end)
        return JSONResponse(_views.resampled_json(r))

    @router.get("/api/tags/{path:path}/value", tags=["tags"], response_model=_views.ValueOut)
    def value(
        path: TagPath,
        at: Annotated[str, Query(description="ISO 8601, epoch ms, now, or -15m.")],
    ) -> dict[str, Any]:
        """The value holding at a time: the last good sample at or before it (null if none)."""
        return _views.value_json(history.value(path, at))

    @router.get("/api/tags/{path:path}/last", tags=["tags"], response_model=_views.LastOut)
    def last(path: TagPath) -> JSONResponse:
        """The newest sample of one tag."""
        return JSONResponse(_views.last_json(history.last(path)))

    @router.post("/api/tags/{path:path}/write", tags=["tags"], responses=_errors.WRITE_RESPONSES)
    async def write(path: TagPath, body: WriteRequest) -> WriteAnswer:
        """Write a value to the device behind a writable tag (``[[connector]] writable``) and
        read it back: ``value`` is what the device holds now, ``confirmed`` whether that is
        the value asked for."""
        result = await node.write(path, body.value, origin="api")
        return WriteAnswer.of(result)

    return router


def _transfer_router(node: Node) -> APIRouter:
    """Samples in (``POST /api/ingest``) and history out (``GET /api/export``)."""
    router = APIRouter()
    history = node.history

    @router.post("/api/ingest", tags=["tags"])
    async def ingest_samples(
        request: Request,
        max_future_s: Annotated[
            float, Query(ge=0, description="Refuse rows further ahead.")
        ] = 300.0,
    ) -> dict[str, Any]:
        """Store samples from JSON rows, CSV or Arrow IPC (``tag, timestamp, value[, quality]``),
        for back-filling history; rows that fail validation are refused with their reason."""
        node.writer.check_accepting()  # before parsing: nothing of it is taken
        body = await read_body(request)
        batch, result = await anyio.to_thread.run_sync(  # a big body never blocks the loop
            functools.partial(
                ingest,
                body,
                request.headers.get("content-type", "application/json"),
                registry=node.registry,
                now_ns=node.clock.now_ns(),
                dead_letters=node.dead_letters,
                max_future_s=max_future_s,
            )
        )
        if len(batch):  # answered once durable: a 200 means stored, even if the node dies now
            await node.publish_durable(batch, refuse=True)
        return result.as_dict()

    @router.get(
        "/api/export",
        tags=["tags"],
        response_class=FileResponse,
        responses={
            200: {
                "description": "The file, as an attachment.",
                "content": {t: {} for t in EXPORT_TYPES.values()},
            }
        },
    )
    def export_file(
        pattern: Annotated[str, Query(description="MQTT-style tag filter.")] = "#",
        start: Annotated[str, Query(description="Like samples; default: all.")] = EPOCH,
        end: Annotated[str | None, Query(description="Like start; default now.")] = None,
        format: Annotated[str, Query(description="parquet or csv.")] = "parquet",
    ) -> FileResponse:
        """The history of the matching tags as a Parquet or CSV file (tag, timestamp, value,
        quality), the columns `POST /api/ingest` and `genba import` take."""
        if format not in ("parquet", "csv"):
            raise QueryError(f"unknown format {format!r}; valid values are: parquet, csv")
        span = history.span(start, end)
        fd, name = tempfile.mkstemp(suffix=f".{format}")
        os.close(fd)
        write_file(export_tables(node.store, node.registry, pattern, span), Path(name), format)  # type: ignore[arg-type]
        return FileResponse(
            name,
            media_type=EXPORT_TYPES[format],
            filename=f"genba-export.{format}",
            background=BackgroundTask(os.unlink, name),
        )

    return router


def _live_router(node: Node) -> APIRouter:
    """The live WebSocket."""
    router = APIRouter()

    @router.websocket("/ws/live")
    async def live(ws: WebSocket, pattern: str = "#") -> None:
        """Streams new samples of the tags matching ``pattern`` (see docs/api.md)."""
        await live_stream(ws, node, pattern)

    return router

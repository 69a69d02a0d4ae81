"""Samples in (``POST /api/ingest``) and history out (``GET /api/export``)."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from genba.api._errors import RequestTimeout
from genba.errors import QueryError
from genba.historian import export_tables, write_file
from genba.node import Node, ingest

EPOCH = "1970-01-01T00:00:00Z"
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


class RefusedRow(BaseModel):
    row: int = Field(description="Its index in the body (0: the first data row).")
    tag: str
    reason: str = Field(description="Why it was refused, and the fix.")


class IngestOut(BaseModel):
    accepted: int = Field(description="Rows stored (durable before this answer).")
    rejected: int = Field(description="Rows refused; they are dead letters.")
    errors: list[RefusedRow] = Field(description="The first refused rows with their reasons.")


def router(node: Node) -> APIRouter:
    """Samples in (``POST /api/ingest``) and history out (``GET /api/export``)."""
    r = APIRouter()
    history = node.history

    @r.post("/api/ingest", tags=["tags"], response_model=IngestOut)
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

    @r.get(
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

    return r

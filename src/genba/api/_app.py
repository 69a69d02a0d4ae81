"""The FastAPI app of a node, composed of one router per resource: the node (``_node``),
tags and their history and writes (``_tags``), samples in and out (``_transfer``), KPIs
(``_kpi``), alarms (``_alarms``) and the live WebSocket (``_live``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genba import web
from genba._version import __version__
from genba.api import _alarms, _errors, _kpi, _live, _models, _node, _tags, _transfer
from genba.api._errors import RequestTooLarge
from genba.node import Node

EPOCH = "1970-01-01T00:00:00Z"


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
    app.include_router(_node.router(node))
    app.include_router(_tags.router(node))
    app.include_router(_transfer.router(node))
    app.include_router(_kpi.router(node))
    app.include_router(_alarms.router(node))
    app.include_router(_models.router(node))
    app.include_router(_live.router(node))
    web.mount(app)
    return app

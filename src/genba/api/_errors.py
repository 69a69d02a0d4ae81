"""One JSON error shape for the whole API, made here and nowhere else.

>>> error_body(404, "unknown_tag", "Unknown tag 'x'.")
{'error': {'status': 404, 'type': 'unknown_tag', 'message': "Unknown tag 'x'."}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from genba.alarms import AlarmStateError
from genba.errors import (
    GenbaError,
    ModelError,
    NotAcceptingError,
    NotConnectedError,
    NotWritableError,
    PatternError,
    QueryError,
    StoreError,
    UnknownTagError,
    WriteRejectedError,
    WriteTimeoutError,
)

log = logging.getLogger("genba.api")


class RequestTooLarge(GenbaError):
    """A request body over ``[node] max_body_mb`` (413)."""


class RequestTimeout(GenbaError):
    """A request body that did not arrive in time (408)."""


_STATUS: list[tuple[type[GenbaError], int, str]] = [
    (UnknownTagError, 404, "unknown_tag"),
    (PatternError, 400, "bad_pattern"),
    (QueryError, 400, "bad_query"),
    (RequestTooLarge, 413, "too_large"),
    (RequestTimeout, 408, "timeout"),
    (NotAcceptingError, 503, "not_accepting"),
    (StoreError, 503, "store_unavailable"),
    (AlarmStateError, 409, "alarm_state"),
    (NotConnectedError, 503, "not_connected"),
    (NotWritableError, 403, "not_writable"),
    (WriteRejectedError, 409, "write_rejected"),
    (WriteTimeoutError, 504, "write_timeout"),
    (ModelError, 409, "model"),
]


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status again.")
    type: str = Field(description="Machine-readable kind: unknown_tag, bad_query, bad_request…")
    message: str = Field(description="What is wrong and the fix, for a person.")
    suggestions: list[str] | None = Field(None, description="unknown_tag: near tag paths.")
    retry_after_s: int | None = Field(None, description="not_accepting: send again after.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Bad query, pattern, time or body (the message names it and the fix).",
    404: "Unknown tag, asset, alarm or downtime, or no such endpoint.",
    408: "The request body did not arrive in time.",
    409: "The alarm is not in a state that allows this, or the device refused the value.",
    413: "The request body is over [node] max_body_mb.",
    422: "A parameter or body field is missing or of the wrong type.",
    500: "A fault of the node; the log has the details.",
    503: "The store cannot answer or take samples now (send again after Retry-After), or "
    "the connector of the tag is not connected.",
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The tag is not writable ([[connector]] writable)."},
    504: {"model": ErrorBody, "description": "No answer or no read-back in time."},
}
"""The statuses only a tag write answers with."""
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DESCRIPTIONS.items()
}
"""Every error status, declared for every operation of the OpenAPI with its one shape."""


def error_body(status: int, kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """The body of every error response: ``{"error": {status, type, message, ...}}``."""
    return {"error": {"status": status, "type": kind, "message": message, **extra}}


def classify(exc: GenbaError) -> tuple[int, str]:
    """HTTP status and error type for a genba error."""
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "error"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where, *rest = err["loc"] or ("request",)
        name = ".".join(str(p) for p in rest) or where
        got = f" (got {err['input']!r})" if err.get("input") is not None else ""
        parts.append(f"{where} parameter '{name}': {err['msg']}{got}")
    return "; ".join(parts) + "."


def install(app: FastAPI) -> None:
    """Route every error the app can raise through :func:`error_body`."""

    @app.exception_handler(GenbaError)
    async def _genba(_: Request, exc: GenbaError) -> JSONResponse:
        status, kind = classify(exc)
        extra: dict[str, Any] = (
            {"suggestions": exc.suggestions} if isinstance(exc, UnknownTagError) else {}
        )
        headers = None
        if isinstance(exc, NotAcceptingError):
            extra = {"retry_after_s": exc.retry_after_s}
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(
            error_body(status, kind, str(exc), **extra), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(422, "bad_request", _validation_message(exc)), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "http_error"
        msg = (
            f"No such endpoint: {request.method} {request.url.path}. See /docs for the API."
            if exc.status_code == 404
            else str(exc.detail)
        )
        return JSONResponse(error_body(exc.status_code, kind, msg), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                500,
                "internal_error",
                f"Internal error ({type(exc).__name__}); the node log has the details.",
            ),
            status_code=500,
        )

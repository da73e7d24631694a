"""Every failure answered as an OpenAI-style error object: ``{"error": {"message", "type"}}``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ragmem.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailableError,
    InvalidInputError,
    NotFoundError,
    RagmemError,
    RateLimitError,
    StoreLockedError,
)

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["ApiError", "error_payload", "install_handlers", "status_of"]

log = logging.getLogger("ragmem.server")


class ApiError(Exception):
    """An answer the edge gives on its own: a status, a message and an OpenAI error type."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.headers = headers


def error_payload(message: str, kind: str, code: str | None = None) -> dict[str, object]:
    """The body of an error answer (also the ``data:`` of an error event in a stream)."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def status_of(exc: BaseException) -> tuple[int, str, str | None]:
    """The HTTP status, OpenAI error type and code a library error is answered with."""
    if isinstance(exc, ApiError):
        return exc.status, exc.kind, exc.code
    if isinstance(exc, NotFoundError):
        return 404, "not_found_error", "not_found"
    if isinstance(exc, InvalidInputError | ValueError) and isinstance(exc, RagmemError):
        return 400, "invalid_request_error", None
    if isinstance(exc, StoreLockedError):
        return 503, "server_error", "store_locked"
    if isinstance(exc, RateLimitError):
        return 429, "rate_limit_error", "upstream_rate_limited"
    if isinstance(exc, BackendUnavailableError | TimeoutError):
        return 504, "upstream_error", "upstream_timeout"
    if isinstance(exc, BackendHTTPError | BackendError):
        return 502, "upstream_error", "upstream_failed"
    return 500, "server_error", None


def _answer(exc: BaseException) -> JSONResponse:
    status, kind, code = status_of(exc)
    if status == 500 and not isinstance(exc, ApiError):
        log.error("unhandled error", exc_info=exc)
        message = "internal server error"
    else:
        message = " ".join(str(exc).split()) or type(exc).__name__
    headers = exc.headers if isinstance(exc, ApiError) else None
    if status == 429 and isinstance(exc, RateLimitError) and exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return JSONResponse(error_payload(message, kind, code), status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Answer library errors, validation errors and HTTP errors in the OpenAI shape."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return _answer(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        body = error_payload("; ".join(parts) or "invalid request", "invalid_request_error")
        return JSONResponse(body, status_code=422)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        body = error_payload(str(exc.detail), "invalid_request_error")
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(RagmemError, on_error)
    # anything else is a defect: answered 500 in the same shape (and logged with its traceback)
    app.add_exception_handler(Exception, on_error)

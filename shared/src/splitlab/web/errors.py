"""One error hierarchy for every HTTP service: domain errors carry their HTTP status.

Handlers render every error as ``{"error": {"code", "message", "field"}}``; validation errors
keep FastAPI's ``detail`` list too, and their message names the field and the problem. A call
that needs Postgres while it cannot be reached is a 503 ``dependency_unavailable`` naming it,
in every service.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from splitlab.storage.errors import POSTGRES_UNAVAILABLE, driver_reason, is_connection_error

logger = logging.getLogger(__name__)

POSTGRES_RETRY_AFTER_SECONDS = 5


class SplitLabError(Exception):
    """Base of every error a service turns into an HTTP answer."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class NotFoundError(SplitLabError):
    status_code = 404
    code = "not_found"


class ConflictError(SplitLabError):
    status_code = 409
    code = "conflict"


class InvalidInputError(SplitLabError):
    status_code = 422
    code = "invalid_input"


class UnauthorizedError(SplitLabError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(SplitLabError):
    status_code = 403
    code = "forbidden"


class PayloadTooLargeError(SplitLabError):
    status_code = 413
    code = "payload_too_large"


class DependencyUnavailableError(SplitLabError):
    status_code = 503
    code = "dependency_unavailable"


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SplitLabError)
    async def _domain(_: Request, exc: SplitLabError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        messages = [f"{_field_path(e['loc'])}: {e['msg']}" for e in errors]
        first = _field_path(errors[0]["loc"]) if errors else None
        body = {
            "error": {"code": "invalid_input", "message": "; ".join(messages), "field": first},
            "detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors],
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_connection_error(exc):
            # An outage, not a bug: one line, no traceback (every call logs it while it lasts).
            where = {"path": request.url.path, "error": driver_reason(exc)}
            logger.warning("Postgres unavailable", extra=where)
            body = DependencyUnavailableError(POSTGRES_UNAVAILABLE).to_body()
            headers = {"Retry-After": str(POSTGRES_RETRY_AFTER_SECONDS)}
            return JSONResponse(body, status_code=503, headers=headers)
        logger.error("database error", exc_info=exc, extra={"path": request.url.path})
        message = "internal error in a database call; the service log has it under this request id"
        body = {"error": {"code": "internal_error", "message": message, "field": None}}
        return JSONResponse(body, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "field": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

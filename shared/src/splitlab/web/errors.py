"""One error hierarchy for every HTTP service: domain errors carry their HTTP status.

Handlers render every error as ``{"error": {"code", "message", "field"}}``; validation errors
keep FastAPI's ``detail`` list too, and their message names the field and the problem.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "field": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

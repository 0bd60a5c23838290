"""How every HTTP service answers an error: the FastAPI exception handlers.

The errors themselves are the domain hierarchy of ``splitlab.platform.errors`` (each carries its
HTTP status); this module renders them as ``{"error": {"code", "message", "field"}}``; validation
errors keep FastAPI's ``detail`` list too, and their message names the field and the problem. A
call that needs Postgres while it cannot be reached is a 503 ``dependency_unavailable`` naming it,
in every service. Anything else is a JSON 500 ``internal_error`` that carries the request id
(``X-Request-Id``) under which the service log holds the traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from splitlab.contracts.names import PATTERN_RULES
from splitlab.core.errors import ArgumentError
from splitlab.platform.errors import DependencyUnavailableError, SplitLabError, internal_error_body
from splitlab.platform.storage.errors import (
    POSTGRES_UNAVAILABLE,
    driver_reason,
    is_connection_error,
)
from splitlab.platform.telemetry.logs import request_id_var

logger = logging.getLogger(__name__)

POSTGRES_RETRY_AFTER_SECONDS = 5


_JSON = "application/json"
_JSON_HINT = "Content-Type: application/json"
_FASTAPI_UNPARSEABLE = "There was an error parsing the body"
_CHOICES = re.compile(r"\^\(([\w-]+(?:\|[\w-]+)+)\)\$")


def _describe(error: Any) -> tuple[str, str]:
    """One validation error as (message naming the field, field)."""
    if error["type"] == "json_invalid":
        # FastAPI puts the decoder's character position where a field would be.
        at = error["loc"][-1] if len(error["loc"]) > 1 else None
        reason = (error.get("ctx") or {}).get("error") or error["msg"]
        where = f" at character {at}" if isinstance(at, int) else ""
        return f"body: not valid JSON{where} ({reason}); send a JSON object", "body"
    if error["type"] == "missing" and tuple(error["loc"]) == ("body",):
        return "body: missing; send a JSON object", "body"
    path = _field_path(error["loc"])
    message = str(error["msg"])
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")  # our validators' own words
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ArgumentError):  # a model's own check naming one of its fields
            field = cause.argument if path == "body" else f"{path}.{cause.argument}"
            detail = cause.message.removeprefix(f"{cause.argument}: ")
            return f"{field}: {detail}", field
    elif error["type"] == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        choices = _CHOICES.fullmatch(pattern)
        if pattern in PATTERN_RULES:  # say the rule in words, not as a regular expression
            message = f"should be {PATTERN_RULES[pattern]}"
        elif choices:  # an enumeration written as a pattern: list the values
            message = f"should be one of {', '.join(choices.group(1).split('|'))}"
    return f"{path}: {message}", path


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SplitLabError)
    async def _domain(_: Request, exc: SplitLabError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        described = [_describe(e) for e in errors]
        messages = [message for message, _ in described]
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith(_JSON) and any(e["loc"][:1] == ("body",) for e in errors):
            sent = f"as {content_type}" if content_type else "without a Content-Type"
            messages.append(f"the body was sent {sent}: send JSON with {_JSON_HINT}")
        body = {
            "error": {
                "code": "invalid_input",
                "message": "; ".join(messages),
                "field": described[0][1] if described else None,
            },
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
        return JSONResponse(internal_error_body(request_id_var.get()), status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this last handler, then re-raises; ``RequestMiddleware`` keeps the
        # exception from the server, so the keep-alive connection survives the 500.
        logger.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
        return JSONResponse(internal_error_body(request_id_var.get()), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message, field = str(exc.detail), None
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route that matched the path
            # only; a path served by several routes (GET and POST /models) allows them all.
            allowed = _allowed_methods(request)
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
                message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        if exc.status_code == 400 and message == _FASTAPI_UNPARSEABLE:
            # FastAPI's answer when the JSON decoder itself fails (bytes that are not UTF-8,
            # nesting deeper than the decoder's recursion limit): say which field and the fix.
            code, field = "invalid_input", "body"
            message = (
                "body: could not be decoded as JSON (not UTF-8, or nested too deeply); "
                f"send a UTF-8 JSON object with {_JSON_HINT}"
            )
        body = {"error": {"code": code, "message": message, "field": field}}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    from splitlab.web.openapi import api_routes  # the shell's modules import this one

    path = request.url.path
    methods: set[str] = set()
    for _, route_methods, _, route in api_routes(request.app.routes):
        if route.path_regex.match(path):
            methods |= route_methods
    return sorted(methods)

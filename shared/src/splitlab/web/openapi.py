"""What every service's OpenAPI document declares beyond what FastAPI derives from the routes.

FastAPI knows the success answer and the validation error of each operation; the answers the
shell gives every route (``splitlab.web.app``) it cannot see. ``complete_openapi`` adds them, one
rule for all services:

- the error body (``ErrorBody``: ``{"error": {"code", "message", "field"}}``, ``detail`` on
  validation errors) on every error answer, in place of FastAPI's own 422 schema;
- 400 (a body that is not UTF-8 JSON), 413 (a body over the limit) and 422 on operations that
  take a body; 422 on operations that take parameters (every string parameter refuses NUL);
  404 on operations with path parameters; 503 (a dependency is down) and 500 (unexpected; the
  body carries the request id) on every operation but ``/healthz``;
- the text rule of ``splitlab.web.storable`` on every schema: each free string (and each object's
  property names) carries the pattern ``NO_NUL``, each untyped value (``Any``) is a ``JsonValue``
  whose strings do too; a fuzzer reading the document then knows NUL is refused, and a client
  generator can say so;
- the security schemes, and 401/403 on the operations that check a key: ``adminKey`` for the
  admin routes, ``callerKey`` for the production paths when ``SPLITLAB_ASSIGN_API_KEY`` is set
  (unset, they are open, and the document says so by declaring no security).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from splitlab.platform.settings import Settings
from splitlab.web.auth import (
    KeyRing,
    admin_actor,
    require_admin,
    require_caller,
    require_compute,
    require_reader,
)

__all__ = ["api_routes", "complete_openapi"]

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_BODY: dict[str, Any] = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "Names the field and the fix."},
                "field": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "request_id": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "On 500: the id the service log holds the failure under.",
                },
            },
        },
        "detail": {
            "type": "array",
            "description": "Validation errors (422): FastAPI's list, one entry per problem.",
            "items": {"type": "object"},
        },
    },
}

_BODY_ANSWERS = {
    "400": "The body could not be decoded (not UTF-8 JSON, or nested too deeply).",
    "413": "The body is larger than the limit (SPLITLAB_MAX_BODY_BYTES or the route's own).",
    "422": "Invalid input; `error.field` names the field and `error.message` the fix.",
}
_PARAMETER_ANSWER = "Invalid parameter; `error.field` names it and `error.message` the fix."
_NOT_FOUND = "No such resource; `error.field` names the parameter."
_UNAVAILABLE = "A dependency (Postgres, Redis, Kafka) is unavailable; retry later."
_INTERNAL = "Unexpected error; `error.request_id` is what the service log holds it under."
_UNAUTHORIZED = "No key sent (or none configured for this service)."
_FORBIDDEN = "The key sent is not valid here."

_SCHEMES: dict[str, dict[str, Any]] = {
    "adminKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "SPLITLAB_ADMIN_API_KEY, as 'Authorization: Bearer <key>'.",
    },
    "readKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "SPLITLAB_READ_API_KEY, as 'Authorization: Bearer <key>': reads when set, "
        "expensive computations always.",
    },
    "callerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "SPLITLAB_ASSIGN_API_KEY, as 'Authorization: Bearer <key>' (when set).",
    },
}


NO_NUL = "^[^\\u0000]*$"
"""Text without NUL (a lone surrogate has no JSON Schema spelling; the refusal covers it too)."""
_JSON_VALUE_REF = "#/components/schemas/JsonValue"
JSON_VALUE: dict[str, Any] = {
    "title": "JsonValue",
    "description": "Any JSON value; its strings and property names hold no NUL.",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number"},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": _JSON_VALUE_REF}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": _JSON_VALUE_REF},
        },
    ],
}
_COMBINERS = ("anyOf", "oneOf", "allOf", "prefixItems")
_TYPED = ("type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "not")


def forbid_nul(schema: Any) -> None:
    """Add ``NO_NUL`` to every free string of ``schema`` and its parts, in place."""
    if not isinstance(schema, dict):
        return
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and not {"pattern", "format", "enum", "const"} & schema.keys():
        schema["pattern"] = NO_NUL
    if "object" in types or "properties" in schema or "additionalProperties" in schema:
        schema.setdefault("propertyNames", {"pattern": NO_NUL})
        if schema.get("additionalProperties", True) in (True, {}):
            schema["additionalProperties"] = {"$ref": _JSON_VALUE_REF}
    if schema.get("items") in (True, {}):
        schema["items"] = {"$ref": _JSON_VALUE_REF}
    for _name, part in list(schema.get("properties", {}).items()):
        if isinstance(part, dict) and not _TYPED_KEYS & part.keys():
            part["$ref"] = _JSON_VALUE_REF  # an untyped field (``Any``)
        forbid_nul(part)
    for key in ("items", "additionalProperties", "not"):
        forbid_nul(schema.get(key))
    for key in _COMBINERS:
        for part in schema.get(key, []):
            forbid_nul(part)


_TYPED_KEYS = frozenset(_TYPED)


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, set[str], Dependant, Any]]:
    """Every API route as (full path, methods, effective dependant, the route or its context).

    An included router (FastAPI >= 0.160) dispatches through "effective contexts" that carry the
    include's prefix, dependencies and limits; they are what to read."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                if isinstance(context.original_route, APIRoute) and context.dependant:
                    yield context.path, set(context.methods), context.dependant, context
        elif isinstance(route, APIRoute):
            yield route.path, set(route.methods or ()), route.dependant, route


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _schemes_of(dependant: Dependant, roles: frozenset[str]) -> list[str]:
    """The keys an operation accepts, given the roles with a configured key: changes take the
    admin key; reads a read key once one is configured; expensive computations a read key
    always; production calls a caller key once one is configured; an admin key all of them."""
    calls = set(_calls(dependant))
    schemes = []
    if calls & {require_compute} or (calls & {require_reader} and "read" in roles):
        schemes.append("readKey")
    if calls & {require_caller} and "caller" in roles:
        schemes.append("callerKey")
    if schemes or calls & {require_admin, admin_actor}:
        schemes.append("adminKey")
    return schemes


def complete_openapi(
    schema: dict[str, Any], routes: Sequence[BaseRoute], settings: Settings
) -> dict[str, Any]:
    """``schema`` (FastAPI's document) with the shell's answers and security added, in place."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for part in schemas.values():
        forbid_nul(part)
    schemas["ErrorBody"] = ERROR_BODY
    schemas["JsonValue"] = JSON_VALUE
    roles = KeyRing.from_settings(settings).roles
    schemes_by_operation = {
        (path, method.lower()): _schemes_of(dependant, roles)
        for path, methods, dependant, _ in api_routes(routes)
        for method in methods
    }
    used: set[str] = set()
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            answers = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                forbid_nul(parameter.get("schema"))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                forbid_nul(content.get("schema"))
            if "requestBody" in operation:
                for status, description in _BODY_ANSWERS.items():
                    _declare(answers, status, description)
            if parameters:
                _declare(answers, "422", _PARAMETER_ANSWER)
            if any(p.get("in") == "path" for p in parameters):
                _declare(answers, "404", _NOT_FOUND)
            if path != "/healthz":
                _declare(answers, "503", _UNAVAILABLE)
                _declare(answers, "500", _INTERNAL)
            schemes = schemes_by_operation.get((path, method), [])
            if schemes:
                used.update(schemes)
                operation["security"] = [{name: []} for name in schemes]
                _declare(answers, "401", _UNAUTHORIZED)
                _declare(answers, "403", _FORBIDDEN)
            for status, answer in answers.items():
                if status.startswith(("4", "5")) and _generic(answer):
                    # An error answer with no schema of its own has the one error body.
                    answer["content"] = {"application/json": {"schema": _ERROR_REF}}
    if used:
        components["securitySchemes"] = {name: _SCHEMES[name] for name in sorted(used)}
    return schema


def _declare(answers: dict[str, Any], status: str, description: str) -> None:
    if status not in answers:
        answers[status] = {"description": description}
    elif answers[status].get("description") in ("Validation Error", "", None):
        answers[status]["description"] = description


def _generic(answer: dict[str, Any]) -> bool:
    """No schema of its own: none, an empty one, or FastAPI's validation error."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    return not schema or schema == {"$ref": "#/components/schemas/HTTPValidationError"}

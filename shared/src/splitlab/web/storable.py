"""Every service refuses text it could not store (``splitlab.contracts.text``), in one place.

Bodies: ``RequestMiddleware`` reads each request body anyway (for its size limit); a byte search
finds the JSON escapes a NUL or a lone surrogate needs, and only then is the body decoded to name
the field (``body_problem``). Path and query parameters: ``check_parameters``, a dependency
``create_service_app`` puts on every route, names the parameter. Both answer 422 in the shared
error format, before any endpoint, schema or database sees the value.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from splitlab.contracts.text import find_unstorable, may_hold_unstorable, unstorable_reason
from splitlab.platform.errors import InvalidInputError

__all__ = ["body_problem", "check_parameters", "problem_body"]


def body_problem(raw: bytes) -> tuple[str, str] | None:
    """(field, reason) of the first unstorable string in a JSON body; None if there is none
    (or the body is not JSON: the endpoint answers that)."""
    if not may_hold_unstorable(raw):
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return find_unstorable(document)


def problem_body(field: str, reason: str) -> dict[str, Any]:
    """The 422 answer for an unstorable body field (the validation-error format)."""
    loc = ["body"] if field == "body" else ["body", *field.split(".")]
    message = f"{field}: {reason}"
    return {
        "error": {"code": "invalid_input", "message": message, "field": field},
        "detail": [{"loc": loc, "msg": reason, "type": "string_unstorable"}],
    }


def check_parameters(request: Request) -> None:
    """Refuse a path or query parameter that holds unstorable text, naming it."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            reason = unstorable_reason(value)
            if reason is not None:
                raise InvalidInputError(f"{name}: {reason}", field=name)
    if request.scope.get("query_string"):
        for name, value in request.query_params.multi_items():
            name_reason = unstorable_reason(name)
            if name_reason is not None:
                raise InvalidInputError(f"query parameter {name!r}: {name_reason}", field=name)
            reason = unstorable_reason(value)
            if reason is not None:
                raise InvalidInputError(f"{name}: {reason}", field=name)

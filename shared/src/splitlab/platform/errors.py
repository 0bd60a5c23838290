"""SplitLab's domain errors: one hierarchy, each error carrying its HTTP status and the field it
names, with no web framework or database driver in sight.

The pure core raises ``splitlab.core.errors.ArgumentError`` (a ``ValueError`` whose ``argument``
names the argument at fault; a service puts it in ``field``); the runtime and the services raise
these, and the web shell (``splitlab.web.error_handlers``) renders them as
``{"error": {"code", "message", "field"}}`` with their ``status_code``. A worker, a consumer or the
CLI may raise and catch them without importing FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "DependencyUnavailableError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SplitLabError",
    "UnauthorizedError",
    "internal_error_body",
]


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


def internal_error_body(request_id: str | None) -> dict[str, Any]:
    """The 500 answer: no detail of the failure, the request id to find it in the log."""
    message = (
        f"internal error; the service log has it under request id {request_id}"
        if request_id
        else "internal error; the service log has it"
    )
    return {
        "error": {
            "code": "internal_error",
            "message": message,
            "field": None,
            "request_id": request_id,
        }
    }

"""Bearer-key checks every service uses: admin endpoints and the optional caller key.

``require_admin`` guards admin routes with ``SPLITLAB_ADMIN_API_KEY``; ``require_caller`` guards
the production paths (``/assign``, ``/predict``, ``/outcomes``) with ``SPLITLAB_ASSIGN_API_KEY``
when it is set. Both read the settings from ``request.app.state.settings`` (put there by
``create_service_app``) and compare keys in constant time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, Request

from splitlab.settings import Settings
from splitlab.web.errors import ForbiddenError, UnauthorizedError

__all__ = ["bearer_token", "keys_match", "require_admin", "require_caller"]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def keys_match(given: str, expected: str) -> bool:
    """Constant-time comparison (no timing leak of how much of the key matched)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def require_admin(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    settings: Settings = request.app.state.settings
    if settings.admin_api_key is None:
        raise UnauthorizedError(
            "admin endpoints are disabled: no admin key is configured; set SPLITLAB_ADMIN_API_KEY "
            "(in .env or the environment) and send it as 'Authorization: Bearer <key>'"
        )
    token = bearer_token(authorization)
    if token is None:
        raise UnauthorizedError(
            "missing admin key: send 'Authorization: Bearer <SPLITLAB_ADMIN_API_KEY>'"
        )
    if not keys_match(token, settings.admin_api_key.get_secret_value()):
        raise ForbiddenError("the admin key is not valid")


async def require_caller(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Open unless ``SPLITLAB_ASSIGN_API_KEY`` is set (async: no thread hop on the hot path)."""
    settings: Settings = request.app.state.settings
    if settings.assign_api_key is None:
        return
    token = bearer_token(authorization)
    if token is None:
        raise UnauthorizedError(
            "missing key: send 'Authorization: Bearer <SPLITLAB_ASSIGN_API_KEY>'"
        )
    if not keys_match(token, settings.assign_api_key.get_secret_value()):
        raise ForbiddenError("the assign key is not valid")

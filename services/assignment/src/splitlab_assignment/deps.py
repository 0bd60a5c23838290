"""FastAPI dependencies of the assignment service, as ``Annotated`` aliases.

The lifespan puts the collaborators on ``app.state`` (``registry``, ``assigner``); routes get
them through these aliases, and tests swap them with ``app.dependency_overrides`` if needed.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from splitlab.settings import Settings
from splitlab.web.errors import ForbiddenError, InvalidInputError, UnauthorizedError
from splitlab_assignment.assigner import AssignmentService
from splitlab_assignment.registry import ExperimentRegistry

DEFAULT_ACTOR = "admin"
MAX_ACTOR_LENGTH = 200


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> ExperimentRegistry:
    registry: ExperimentRegistry = request.app.state.registry
    return registry


async def get_assigner(request: Request) -> AssignmentService:
    assigner: AssignmentService = request.app.state.assigner
    return assigner


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
    settings: Annotated[Settings, Depends(get_settings)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
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


async def require_assign_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
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


def get_actor(
    x_splitlab_actor: Annotated[str | None, Header(alias="X-SplitLab-Actor")] = None,
) -> str:
    """Who the audit log names: the ``X-SplitLab-Actor`` header, else ``admin``."""
    if x_splitlab_actor is None or not x_splitlab_actor.strip():
        return DEFAULT_ACTOR
    actor = x_splitlab_actor.strip()
    if len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidInputError(
            f"X-SplitLab-Actor: at most {MAX_ACTOR_LENGTH} characters", field="X-SplitLab-Actor"
        )
    return actor


Registry = Annotated[ExperimentRegistry, Depends(get_registry)]
Assigner = Annotated[AssignmentService, Depends(get_assigner)]
Actor = Annotated[str, Depends(get_actor)]
AdminOnly = Depends(require_admin)
AssignCaller = Depends(require_assign_caller)

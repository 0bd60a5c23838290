"""FastAPI dependencies of the assignment service, as ``Annotated`` aliases (the bearer-key
checks are shared: ``splitlab.web.auth``).

The lifespan puts the collaborators on ``app.state`` (``registry``, ``assigner``); routes get
them through these aliases (the hot ``/assign`` routes call ``get_assigner`` directly), and
tests swap them with ``app.dependency_overrides`` if needed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from splitlab.settings import Settings
from splitlab.web.auth import require_admin, require_caller
from splitlab.web.errors import InvalidInputError
from splitlab_assignment.assigner import AssignEndpoints
from splitlab_assignment.registry import ExperimentRegistry

DEFAULT_ACTOR = "admin"
MAX_ACTOR_LENGTH = 200


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> ExperimentRegistry:
    registry: ExperimentRegistry = request.app.state.registry
    return registry


def get_assigner(request: Request) -> AssignEndpoints:
    """Called by the lean ``/assign`` routes directly (no ``Depends``: see ``api/assign.py``)."""
    assigner: AssignEndpoints = request.app.state.assigner
    return assigner


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
Actor = Annotated[str, Depends(get_actor)]
AdminOnly = Depends(require_admin)
AssignCaller = Depends(require_caller)

"""FastAPI dependencies of the assignment service, as ``Annotated`` aliases (the bearer-key
checks are shared: ``splitlab.web.auth``).

The lifespan puts the collaborators on ``app.state`` (``registry``, ``assigner``); routes get
them through these aliases (the hot ``/assign`` routes call ``get_assigner`` directly), and
tests swap them with ``app.dependency_overrides`` if needed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from splitlab.platform.settings import Settings
from splitlab.web.auth import admin_actor, require_admin, require_caller, require_reader
from splitlab_assignment.assigner import AssignEndpoints
from splitlab_assignment.registry import ExperimentRegistry


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


Registry = Annotated[ExperimentRegistry, Depends(get_registry)]
Actor = Annotated[str, Depends(admin_actor)]
"""Who the audit log names: the configured name of the admin key the call was made with."""
AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
AssignCaller = Depends(require_caller)

"""FastAPI dependencies of the assignment service: its typed state and the ``Annotated``
aliases routes declare (the bearer-key checks are shared: ``splitlab.web.auth``).

The lifespan stores one ``AssignmentState`` (``splitlab.web.state.install_state``); routes read
it through ``state(request)`` (the hot ``/assign`` routes call it directly) or the aliases, and
tests swap them with ``app.dependency_overrides`` if needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from splitlab.assigning.cache import ExperimentCache
from splitlab.web.auth import admin_actor, require_admin, require_caller, require_reader
from splitlab.web.resources import CoreResources
from splitlab.web.state import state_of
from splitlab_assignment.service.assign import AssignEndpoints
from splitlab_assignment.service.experiments import ExperimentRegistry


@dataclass(frozen=True, slots=True)
class AssignmentState:
    """What the lifespan builds for the routes."""

    core: CoreResources
    cache: ExperimentCache
    registry: ExperimentRegistry
    assigner: AssignEndpoints


def state(request: Request) -> AssignmentState:
    return state_of(request, AssignmentState)


def get_registry(request: Request) -> ExperimentRegistry:
    return state(request).registry


Registry = Annotated[ExperimentRegistry, Depends(get_registry)]
Actor = Annotated[str, Depends(admin_actor)]
"""Who the audit log names: the configured name of the admin key the call was made with."""
AdminOnly = Depends(require_admin)
Reader = Depends(require_reader)
AssignCaller = Depends(require_caller)

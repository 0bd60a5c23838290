"""Routes of the experiment registry: changes need an admin key (``Authorization: Bearer
<key>``, the audit log names the key), reads a read key when one is configured."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from splitlab.core.assignment.lifecycle import Action, Status
from splitlab_assignment.deps import Actor, AdminOnly, Reader, Registry
from splitlab_assignment.schemas import (
    AuditLog,
    ExperimentCreate,
    ExperimentList,
    ExperimentRead,
    ExperimentUpdate,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key sent, or none configured."},
    403: {"description": "Wrong key, or a key whose role may not make this call."},
    404: {"description": "No such experiment."},
    409: {"description": "Key taken, or the action is not allowed from the current status."},
    422: {"description": "Invalid field; `error.field` names it."},
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS, dependencies=[AdminOnly])
def create_experiment(body: ExperimentCreate, registry: Registry, actor: Actor) -> ExperimentRead:
    """Create a draft experiment."""
    return registry.create(body, actor)


@router.get("", responses=ERRORS, dependencies=[Reader])
def list_experiments(
    registry: Registry, status: Annotated[Status | None, Query()] = None
) -> ExperimentList:
    return registry.list_all(status)


@router.get("/{key}", responses=ERRORS, dependencies=[Reader])
def get_experiment(key: str, registry: Registry) -> ExperimentRead:
    return registry.get(key)


@router.patch("/{key}", responses=ERRORS, dependencies=[AdminOnly])
def update_experiment(
    key: str, body: ExperimentUpdate, registry: Registry, actor: Actor
) -> ExperimentRead:
    """Change fields; a started experiment takes only changes that keep units in place, or a
    reshuffling change together with a ``bucket_version`` bump."""
    return registry.update(key, body, actor)


@router.get("/{key}/audit", responses=ERRORS, dependencies=[Reader])
def get_audit_log(
    key: str, registry: Registry, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> AuditLog:
    """Who changed what and when, newest first."""
    return registry.audit(key, limit)


START_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    422: {
        "description": "The pre-flight check found metrics or models missing; `error.missing` "
        "lists each (start anyway with `force=true`)."
    },
    503: {
        "description": "The analyzer or the router could not be asked; `error.unreachable` "
        "names it (start anyway with `force=true`)."
    },
}
Force = Annotated[
    bool,
    Query(
        description="Start even though the pre-flight check finds metrics or models missing, "
        "or cannot ask the analyzer or the router (recorded in the service log)."
    ),
]


@router.post(
    "/{key}/start",
    responses=START_ERRORS,
    dependencies=[AdminOnly],
    summary="Start the experiment",
)
def start_experiment(
    key: str, registry: Registry, actor: Actor, force: Force = False
) -> ExperimentRead:
    """Start a draft, or resume a paused experiment, after the pre-flight check: its metrics
    defined in the analyzer, its models registered in the router."""
    return registry.act(key, Action.START, actor, force=force)


def _action_route(action: Action) -> None:
    def act(key: str, registry: Registry, actor: Actor) -> ExperimentRead:
        return registry.act(key, action, actor)

    act.__name__ = f"{action.value}_experiment"
    router.add_api_route(
        f"/{{key}}/{action.value}",
        act,
        methods=["POST"],
        responses=ERRORS,
        dependencies=[AdminOnly],
        summary=f"{action.value.capitalize()} the experiment",
    )


for _action in Action:
    if _action is not Action.START:
        _action_route(_action)

"""The model catalogue and trainings: ``GET /models``, ``GET /models/{id}``, ``POST /train``,
and the entities that set each experiment's model spec and frequencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from starlette.concurrency import run_in_threadpool

from splitlab.contracts.names import KEY_PATTERN
from splitlab_trainer.deps import AdminOnly, Service
from splitlab_trainer.schemas import (
    EntityList,
    EntityPut,
    EntityRead,
    Kind,
    ModelList,
    ModelRead,
    Status,
    TrainAccepted,
    TrainRequest,
)

router = APIRouter(tags=["models"])
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No admin key sent, or none configured."},
    403: {"description": "Wrong admin key."},
    422: {"description": "Invalid field; `error.field` names it."},
}


@router.get("/models")
async def list_models(
    service: Service,
    experiment_key: str | None = None,
    metric: str | None = None,
    status: Status | None = None,
    kind: Kind | None = None,
    in_use: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ModelList:
    """Trained models, newest first."""
    return await run_in_threadpool(
        service.models,
        experiment_key=experiment_key,
        metric=metric,
        status=status,
        kind=kind,
        in_use=in_use,
        limit=limit,
    )


@router.get("/models/{model_id}", responses={404: {"description": "No such model."}})
async def get_model(model_id: int, service: Service) -> ModelRead:
    return await run_in_threadpool(service.model, model_id)


@router.post(
    "/train",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**ADMIN_ERRORS, 404: {"description": "No such experiment."}},
    dependencies=[AdminOnly],
)
async def train(body: TrainRequest, service: Service) -> TrainAccepted:
    """Queue a training of the experiment's metric (or of each metric with covariates)."""
    return await run_in_threadpool(service.train, body)


@router.get("/entities")
async def list_entities(service: Service) -> EntityList:
    return await run_in_threadpool(service.entity_list)


EntityName = Annotated[str, Path(pattern=KEY_PATTERN)]


@router.get("/entities/{name}", responses={404: {"description": "No such entity."}})
async def get_entity(name: EntityName, service: Service) -> EntityRead:
    return await run_in_threadpool(service.entity, name)


@router.put("/entities/{name}", responses=ADMIN_ERRORS, dependencies=[AdminOnly])
async def put_entity(name: EntityName, body: EntityPut, service: Service) -> EntityRead:
    """Create or replace an entity; its experiments leave any other entity."""
    return await run_in_threadpool(service.put_entity, name, body)

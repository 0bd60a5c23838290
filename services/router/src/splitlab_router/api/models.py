"""Routes of the model registry: registering needs an admin key, reads a read key when one is
configured (``Authorization: Bearer <key>``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from splitlab_router.deps import AdminOnly, Models, Reader
from splitlab_router.schemas import ModelCreate, ModelList, ModelRead

router = APIRouter(prefix="/models", tags=["models"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key sent, or none configured."},
    403: {"description": "Wrong key, or a key whose role may not make this call."},
    404: {"description": "No such model version."},
    409: {"description": "This name:version is registered with another spec."},
    422: {"description": "Invalid field (or an artifact that does not load); `error.field`."},
}


@router.post(
    "",
    status_code=201,
    response_model=ModelRead,
    responses=ERRORS,
    dependencies=[AdminOnly],
)
def register_model(body: ModelCreate, models: Models) -> JSONResponse:
    """Register a model version (201), or answer the identical one already registered (200).

    An sklearn artifact is loaded and checked against the input schema before it is stored."""
    read, created = models.register(body)
    return JSONResponse(read.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("", responses=ERRORS, dependencies=[Reader])
def list_models(models: Models, name: Annotated[str | None, Query()] = None) -> ModelList:
    return models.list_all(name)


@router.get("/{name}/{version}", responses=ERRORS, dependencies=[Reader])
def get_model(name: str, version: str, models: Models) -> ModelRead:
    return models.get(name, version)

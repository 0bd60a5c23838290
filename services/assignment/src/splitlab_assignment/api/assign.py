"""``/assign`` and ``/assign/batch``: for production callers (optional assign key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from splitlab_assignment.deps import AssignCaller, Assigner
from splitlab_assignment.schemas import (
    AssignRequest,
    AssignResponse,
    BatchAssignRequest,
    BatchAssignResponse,
)

router = APIRouter(tags=["assignment"], dependencies=[AssignCaller])


@router.post(
    "/assign",
    response_model=AssignResponse,
    responses={404: {"description": "No such experiment."}},
)
async def assign(body: AssignRequest, assigner: Assigner) -> Response:
    """The unit's variant in one experiment; a non-running experiment answers control with
    ``in_experiment: false`` and the reason, never an error."""
    # Serialized here (a built model needs no second validation as a response_model).
    answer = await assigner.assign(body)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/assign/batch", response_model=BatchAssignResponse)
async def assign_batch(body: BatchAssignRequest, assigner: Assigner) -> Response:
    """The unit's variants in every running experiment it is in (all running ones with
    ``include_excluded``)."""
    answer = await assigner.assign_batch(body)
    return Response(answer.model_dump_json(), media_type="application/json")

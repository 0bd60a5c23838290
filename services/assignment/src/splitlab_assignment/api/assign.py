"""``/assign`` and ``/assign/batch``: for production callers (optional assign key)."""

from __future__ import annotations

from fastapi import APIRouter

from splitlab_assignment.deps import AssignCaller, Assigner
from splitlab_assignment.schemas import (
    AssignRequest,
    AssignResponse,
    BatchAssignRequest,
    BatchAssignResponse,
)

router = APIRouter(tags=["assignment"], dependencies=[AssignCaller])


@router.post("/assign", responses={404: {"description": "No such experiment."}})
async def assign(body: AssignRequest, assigner: Assigner) -> AssignResponse:
    """The unit's variant in one experiment; a non-running experiment answers control with
    ``in_experiment: false`` and the reason, never an error."""
    return await assigner.assign(body)


@router.post("/assign/batch")
async def assign_batch(body: BatchAssignRequest, assigner: Assigner) -> BatchAssignResponse:
    """The unit's variants in every running experiment it is in (all running ones with
    ``include_excluded``)."""
    return await assigner.assign_batch(body)

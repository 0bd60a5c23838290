"""``/assign`` and ``/assign/batch``: for production callers (optional assign key).

Both are ``LeanRoute``s (``splitlab.web.routing``): no per-request dependency solving; the
assigner comes from the app's typed state (``deps.state``), the caller-key check still runs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from splitlab.web.routing import LeanRoute
from splitlab_assignment.deps import AssignCaller, state
from splitlab_assignment.schemas import (
    AssignRequest,
    AssignResponse,
    BatchAssignRequest,
    BatchAssignResponse,
)

router = APIRouter(tags=["assignment"], dependencies=[AssignCaller], route_class=LeanRoute)


@router.post(
    "/assign",
    response_model=AssignResponse,
    responses={404: {"description": "No such experiment."}},
)
async def assign(body: AssignRequest, request: Request) -> Response:
    """The unit's variant in one experiment; a non-running experiment answers control with
    ``in_experiment: false`` and the reason, never an error."""
    # Serialized here (a built model needs no second validation as a response_model).
    answer = await state(request).assigner.assign(body)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post(
    "/assign/batch",
    response_model=BatchAssignResponse,
    responses={404: {"description": "An experiment named in `experiment_keys` does not exist."}},
)
async def assign_batch(body: BatchAssignRequest, request: Request) -> Response:
    """The unit's variants in every running experiment it is in, or in those of
    ``experiment_keys`` (all of them, with the reason, with ``include_excluded``)."""
    answer = await state(request).assigner.assign_batch(body)
    return Response(answer.model_dump_json(), media_type="application/json")

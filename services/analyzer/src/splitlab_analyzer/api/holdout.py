"""``GET /holdout/impact?metric=...``: the global holdout against everyone else, per day
(read). The statistic: ``splitlab.core.analysis.holdout``; the SQL:
``splitlab_analyzer.results.repository.holdout.HoldoutRepository``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from splitlab.core.analysis.holdout import MAX_DAYS
from splitlab.platform.errors import InvalidInputError
from splitlab_analyzer.deps import Holdout, Reader
from splitlab_analyzer.results.holdout import HoldoutImpactBody

router = APIRouter(prefix="/holdout", tags=["holdout"])


SINGLE_PARAMETERS = ("metric", "days", "alpha", "sequential")


def single_parameters(request: Request) -> None:
    """Refuse a parameter given twice (``?metric=ctr&metric=revenue`` once answered for revenue
    alone): the impact is of one metric over one window, so the caller must choose."""
    for name in SINGLE_PARAMETERS:
        given = request.query_params.getlist(name)
        if len(given) > 1:
            raise InvalidInputError(
                f"{name}: given {len(given)} times; pass it once (one metric per request, "
                "one request per metric)",
                field=name,
            )


@router.get(
    "/impact",
    dependencies=[Reader, Depends(single_parameters)],
    response_model=HoldoutImpactBody,
    responses={
        404: {"description": "No metric of that name."},
        409: {"description": "No global holdout configured (SPLITLAB_HOLDOUT_SHARE is 0)."},
        422: {
            "description": "Not a plain outcome metric, days/alpha out of range, or a parameter "
            "given more than once."
        },
    },
)
async def holdout_impact(
    holdout: Holdout,
    metric: Annotated[str, Query(min_length=1, description="A plain outcome metric's name.")],
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days back from now.")] = 28,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    sequential: Annotated[bool, Query(description="Always-valid intervals.")] = False,
) -> Any:
    """The cumulative effect of all launched changes on ``metric``: everyone outside the global
    holdout minus the holdout, per day, with its CI."""
    return await run_in_threadpool(holdout.impact, metric, days, alpha, sequential)

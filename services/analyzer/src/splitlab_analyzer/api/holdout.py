"""``GET /holdout/impact?metric=...``: the global holdout against everyone else, per day
(read). The statistic: ``splitlab.core.analysis.holdout``; the SQL:
``splitlab_analyzer.results.holdout.HoldoutRepository``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from splitlab.core.assignment.decision import HoldoutConfig
from splitlab_analyzer.deps import Reader, state
from splitlab_analyzer.results.holdout import (
    MAX_DAYS,
    HoldoutImpactBody,
    HoldoutRepository,
    HoldoutService,
)

router = APIRouter(prefix="/holdout", tags=["holdout"])


def get_holdout(request: Request) -> HoldoutService:
    current = state(request)
    assert current.core.engine is not None
    settings = current.settings
    return HoldoutService(
        HoldoutRepository(current.core.engine),
        current.metrics,
        HoldoutConfig(share=settings.holdout_share, seed=settings.holdout_seed),
    )


Holdout = Annotated[HoldoutService, Depends(get_holdout)]


@router.get(
    "/impact",
    dependencies=[Reader],
    response_model=HoldoutImpactBody,
    responses={
        404: {"description": "No metric of that name."},
        409: {"description": "No global holdout configured (SPLITLAB_HOLDOUT_SHARE is 0)."},
        422: {"description": "Not a plain outcome metric, or days/alpha out of range."},
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

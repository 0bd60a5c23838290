"""Results: ``GET /experiments/{key}/results`` (cached), ``POST .../refresh``, CUPAC, actions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from splitlab_analyzer.deps import Actions, AdminOnly, AutomationDep, Cupac, History
from splitlab_analyzer.schemas import ActionList, CupacFillResult, ResultsHistory

router = APIRouter(prefix="/experiments/{key}", tags=["results"])
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such experiment, or no exposures yet."},
    422: {"description": "Unknown method, or metrics without a definition."},
}
Method = Annotated[str, Query(pattern="^(auto|none|cuped|regression|cupac)$")]


@router.get("/results", responses=ERRORS)
async def get_results(
    key: str, automation: AutomationDep, method: Method = "auto", sequential: bool = False
) -> JSONResponse:
    """``splitlab.analyze``'s JSON plus sample, monitoring, guardrails and flags (cached)."""
    body = await run_in_threadpool(automation.results_for, key, method, sequential)
    return JSONResponse(body)


@router.post("/refresh", responses=ERRORS)
async def refresh(key: str, automation: AutomationDep) -> JSONResponse:
    """Recompute now, act on guardrails and SRM, refresh the cache and the gauges."""
    return JSONResponse(await run_in_threadpool(automation.refresh, key))


@router.post("/cupac", responses=ERRORS, dependencies=[AdminOnly])
async def fill_cupac(
    key: str,
    cupac: Cupac,
    automation: AutomationDep,
    folds: Annotated[int, Query(ge=2, le=20)] = 5,
) -> CupacFillResult:
    """Cross-fit CUPAC predictions for the experiment's metrics and store them."""
    filled = await run_in_threadpool(cupac.fill, key, folds)
    automation.cache.invalidate(key)
    return CupacFillResult(experiment_key=key, metrics=filled, computed_at=datetime.now(UTC))


@router.get("/analyzer-actions")
async def list_actions(key: str, actions: Actions) -> ActionList:
    """What the analyzer did on its own (flags, pauses) with the evidence, newest first."""
    return ActionList(actions=await run_in_threadpool(actions.list, key))


@router.get("/results/history")
async def results_history(key: str, history: History) -> ResultsHistory:
    """The experiment's results snapshots, oldest first: one per scheduled snapshot pass
    (``SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS``) and one at stop."""
    snapshots = await run_in_threadpool(history.snapshots, key)
    return ResultsHistory.model_validate(
        {"experiment_key": key, "snapshots": [asdict(s) for s in snapshots]}
    )

"""Results: ``GET /experiments/{key}/results`` (cached; read), ``POST .../refresh`` (admin),
CUPAC (admin), actions (read).

A read never acts: flagging and pausing run only in the periodic refresh (the scheduled loop,
``Automation.refresh_running``), so what anyone who reaches a read can trigger is a computation
at most, never a change of an experiment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from splitlab_analyzer.deps import Actions, AdminOnly, AutomationDep, Cupac, Reader
from splitlab_analyzer.schemas import ActionList, CupacFillResult

router = APIRouter(prefix="/experiments/{key}", tags=["results"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key sent, or none configured."},
    403: {"description": "Wrong key, or a key whose role may not make this call."},
    404: {"description": "No such experiment, or no exposures yet."},
    422: {"description": "Unknown method, or metrics without a definition."},
}
Method = Annotated[str, Query(pattern="^(auto|none|cuped|regression|cupac)$")]


@router.get("/results", responses=ERRORS, dependencies=[Reader])
async def get_results(
    key: str, automation: AutomationDep, method: Method = "auto", sequential: bool = False
) -> JSONResponse:
    """``splitlab.analyze``'s JSON plus sample, monitoring, guardrails and flags (cached)."""
    body = await run_in_threadpool(automation.results_for, key, method, sequential)
    return JSONResponse(body)


@router.post("/refresh", responses=ERRORS, dependencies=[AdminOnly])
async def refresh(key: str, automation: AutomationDep) -> JSONResponse:
    """Recompute now and replace the cache and the gauges. Guardrail and SRM actions (flags,
    the auto-pause) stay with the periodic refresh."""
    return JSONResponse(await run_in_threadpool(lambda: automation.refresh(key, act=False)))


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


@router.get("/analyzer-actions", dependencies=[Reader])
async def list_actions(key: str, actions: Actions) -> ActionList:
    """What the analyzer did on its own (flags, pauses) with the evidence, newest first."""
    return ActionList(actions=await run_in_threadpool(actions.list, key))

"""Results: ``GET /experiments/{key}/results`` (cached; read), ``POST .../refresh`` (admin),
CUPAC (admin), actions (read).

A read never acts: flagging and pausing run only in the periodic refresh (the scheduled loop,
``Automation.refresh_running``), so what anyone who reaches a read can trigger is a computation
at most, never a change of an experiment."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from starlette.concurrency import run_in_threadpool

from splitlab.core.analysis.segments import SegmentCorrection, SegmentSpec, parse_segment
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.adjustment import Method
from splitlab.platform.errors import InvalidInputError
from splitlab_analyzer.deps import Actions, AdminOnly, AutomationDep, History, Reader, Trainings
from splitlab_analyzer.results.schemas import ResultsBody
from splitlab_analyzer.schemas import ActionList, ResultsHistory, TrainingQueued

router = APIRouter(prefix="/experiments/{key}", tags=["results"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key sent, or none configured."},
    403: {"description": "Wrong key, or a key whose role may not make this call."},
    404: {"description": "No such experiment, or no exposures yet."},
    422: {"description": "Unknown method or segment, or metrics without a definition."},
}
MethodQuery = Annotated[Method, Query(description="Variance reduction; auto picks one per metric.")]
SegmentQuery = Annotated[
    str | None,
    Query(
        description="A unit attribute of the first exposure (country), or a numeric one with "
        "bucket edges (tenure_days:0,30,180,365): results per segment too.",
        min_length=1,
        max_length=200,
        # An attribute's name comes first: an empty or blank value, or one starting with ':',
        # is refused by the schema itself (and so documented), not after it.
        pattern=r"^\s*[^\s:]",
    ),
]

SegmentCorrectionQuery = Annotated[
    SegmentCorrection,
    Query(description="Adjustment of the segments' p-values (with segment)."),
]


def parse_segment_query(segment: str) -> SegmentSpec:
    """The ``segment`` query parameter; a malformed one is a 422 naming it."""
    try:
        return parse_segment(segment)
    except ArgumentError as exc:
        raise InvalidInputError(exc.message, field="segment") from None


@router.get(
    "/results",
    responses=ERRORS,
    dependencies=[Reader],
    response_model=ResultsBody,
    response_model_exclude_unset=True,
)
async def get_results(
    key: str,
    automation: AutomationDep,
    method: MethodQuery = "auto",
    sequential: bool = False,
    segment: SegmentQuery = None,
    segment_correction: SegmentCorrectionQuery = "holm",
) -> Any:
    """``splitlab.analyze``'s JSON plus sample, monitoring, guardrails and flags (cached);
    with ``segment``, also the results per segment (``segments``)."""
    spec = None if segment is None else parse_segment_query(segment)
    return await run_in_threadpool(
        automation.results_for, key, method, sequential, spec, segment_correction
    )


@router.post(
    "/refresh",
    responses=ERRORS,
    dependencies=[AdminOnly],
    response_model=ResultsBody,
    response_model_exclude_unset=True,
)
async def refresh(key: str, automation: AutomationDep) -> Any:
    """Recompute now and replace the cache and the gauges. Guardrail and SRM actions (flags,
    the auto-pause) stay with the periodic refresh."""
    return await run_in_threadpool(lambda: automation.refresh(key, act=False))


@router.post(
    "/cupac",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "No such experiment."}},
    dependencies=[AdminOnly],
)
async def request_cupac(
    key: str,
    trainings: Trainings,
    metric: Annotated[str | None, Query(description="One metric; omitted: all.")] = None,
) -> TrainingQueued:
    """Enqueue a CUPAC training on the trainer (its progress: the trainer's ``GET /models``);
    results use the new version once it is done."""
    task_id = await run_in_threadpool(trainings.enqueue, key, metric)
    return TrainingQueued(experiment_key=key, task_id=task_id)


@router.get("/analyzer-actions", dependencies=[Reader])
async def list_actions(key: str, actions: Actions) -> ActionList:
    """What the analyzer did on its own (flags, pauses) with the evidence, newest first."""
    return ActionList(actions=await run_in_threadpool(actions.list, key))


@router.get("/results/history", responses=ERRORS, dependencies=[Reader])
async def results_history(key: str, history: History) -> ResultsHistory:
    """The experiment's results snapshots, oldest first: one per scheduled snapshot pass
    (``SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS``) and one at stop."""
    snapshots = await run_in_threadpool(history.snapshots, key)
    return ResultsHistory.model_validate(
        {"experiment_key": key, "snapshots": [asdict(s) for s in snapshots]}
    )

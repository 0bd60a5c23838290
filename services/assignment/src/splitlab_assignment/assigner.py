"""``/assign`` and ``/assign/batch``: the HTTP face of ``splitlab.assigning.AssignmentService``.

The assignment runtime (cache, sticky store, decision, exposures) lives in the shared library so
the router assigns with the same code; this module only translates requests into its calls and
its answers into the response schemas, and times them.
"""

from __future__ import annotations

import time

from splitlab.assigning.cache import ExperimentCache
from splitlab.assigning.service import AssignmentService, ExposurePublisher
from splitlab.assigning.sticky import StickyStore
from splitlab.core.assignment.decision import HoldoutConfig
from splitlab_assignment.metrics import ASSIGN_LATENCY
from splitlab_assignment.schemas import (
    Assignment,
    AssignRequest,
    AssignResponse,
    BatchAssignRequest,
    BatchAssignResponse,
)

__all__ = ["AssignEndpoints", "ExposurePublisher"]

_SINGLE = ASSIGN_LATENCY.labels("assign")
_BATCH = ASSIGN_LATENCY.labels("assign_batch")


class AssignEndpoints:
    def __init__(
        self,
        cache: ExperimentCache,
        sticky: StickyStore,
        publisher: ExposurePublisher,
        holdout: HoldoutConfig | None,
    ) -> None:
        self.service = AssignmentService(cache, sticky, publisher, holdout)

    async def assign(self, request: AssignRequest) -> AssignResponse:
        start = time.perf_counter()
        answer = await self.service.assign(
            request.experiment_key, request.unit_id, request.attributes
        )
        _SINGLE.observe(time.perf_counter() - start)
        return AssignResponse(
            experiment_key=answer.experiment_key,
            variant=answer.variant,
            in_experiment=answer.in_experiment,
            reason=answer.reason,
            sticky=answer.sticky,
            bucket_version=answer.bucket_version,
            degraded=answer.degraded,
        )

    async def assign_batch(self, request: BatchAssignRequest) -> BatchAssignResponse:
        start = time.perf_counter()
        answer = await self.service.assign_batch(
            request.unit_id,
            request.attributes,
            include_excluded=request.include_excluded,
            experiment_keys=request.experiment_keys,
        )
        assignments = [
            Assignment(
                experiment_key=a.experiment_key,
                variant=a.variant,
                in_experiment=a.in_experiment,
                reason=a.reason,
                sticky=a.sticky,
                bucket_version=a.bucket_version,
            )
            for a in answer.assignments
        ]
        _BATCH.observe(time.perf_counter() - start)
        return BatchAssignResponse(
            unit_id=answer.unit_id, assignments=assignments, degraded=answer.degraded
        )

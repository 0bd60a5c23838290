"""``/predict``: assign the unit (the shared ``AssignmentService``: same decision, stickiness and
exposure as ``/assign``), run the variant's model, fall back to control's model when it fails,
copy the request to shadow variants in the background, publish prediction events.

An experiment's models come from its variants' ``model`` field (``name:version``). Variant 0 is
control. A variant with weight 0 and a model is a *shadow*: no unit is ever assigned to it (its
bucket range is empty), and its model receives a copy of every in-experiment request; its
predictions are published with ``shadow: true`` and never returned.

Features are validated before assignment against every serving model of the experiment (the
variants with weight), so a request is refused (422) whatever variant the unit would get, and
no exposure is logged for a refused request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from splitlab.assigning.cache import CachedExperiment
from splitlab.assigning.service import AssignmentService
from splitlab.contracts.events import SCHEMA_VERSION, PredictionEvent
from splitlab.platform.errors import ConflictError, DependencyUnavailableError, NotFoundError
from splitlab_router.metrics import (
    FALLBACKS,
    MODEL_LATENCY,
    PREDICT_ERRORS,
    PREDICT_LATENCY,
    PREDICTIONS,
    SHADOWS_SKIPPED,
    VARIANT_UNITS_SERVED,
)
from splitlab_router.registry import ModelCatalog
from splitlab_router.schemas import PredictRequest, PredictResponse
from splitlab_router.served import ServedRequests
from splitlab_router.serving import (
    Feature,
    ModelError,
    ModelOutput,
    ServedModel,
    validate_features,
)

logger = logging.getLogger(__name__)


class PredictionPublisher(Protocol):
    def publish(self, event: PredictionEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """An experiment version's models: control's, each variant's, the shadows'."""

    version: int
    models: tuple[str | None, ...]
    shadows: tuple[tuple[str, str], ...]
    """(variant key, model ref) of each shadow variant."""


def plan_for(entry: CachedExperiment) -> Plan:
    variants = entry.definition.variants
    models = entry.variant_models or (None,) * len(variants)
    shadows = tuple(
        (v.key, ref)
        for i, (v, ref) in enumerate(zip(variants, models, strict=True))
        if i > 0 and v.weight == 0 and ref
    )
    return Plan(entry.version, models, shadows)


@dataclass(frozen=True, slots=True)
class _Call:
    model: ServedModel
    output: ModelOutput | None
    latency_ms: float
    error: ModelError | None


class PredictionService:
    def __init__(
        self,
        assigner: AssignmentService,
        catalog: ModelCatalog,
        publisher: PredictionPublisher,
        *,
        max_pending_shadows: int,
        served: ServedRequests | None = None,
    ) -> None:
        self._served = served if served is not None else ServedRequests(0)
        self._assigner = assigner
        self._catalog = catalog
        self._publisher = publisher
        self._max_shadows = max_pending_shadows
        self._plans: dict[str, Plan] = {}
        self._shadow_tasks: set[asyncio.Task[None]] = set()

    @property
    def pending_shadows(self) -> int:
        return len(self._shadow_tasks)

    async def drain_shadows(self, timeout: float) -> None:
        """Wait (bounded) for running shadow copies; at shutdown, so their events are logged."""
        if self._shadow_tasks:
            await asyncio.wait(set(self._shadow_tasks), timeout=timeout)

    def _plan(self, entry: CachedExperiment) -> Plan:
        key = entry.definition.key
        plan = self._plans.get(key)
        if plan is None or plan.version != entry.version:
            plan = plan_for(entry)
            self._plans[key] = plan
        return plan

    async def predict(self, request: PredictRequest) -> PredictResponse:
        start = time.perf_counter()
        experiment_key = request.experiment_key
        entry = self._assigner.cache.get(experiment_key)
        if entry is None:
            PREDICT_ERRORS.labels("unknown", "not_found").inc()
            raise NotFoundError(f"no experiment {experiment_key!r}", field="experiment_key")
        plan = self._plan(entry)
        if not plan.models[0]:
            PREDICT_ERRORS.labels(experiment_key, "no_model").inc()
            raise ConflictError(
                f"experiment {experiment_key!r}: its control variant names no model; set "
                "variants[0].model to a registered name:version",
                field="variants[0].model",
            )
        try:
            for position, spec in enumerate(entry.definition.variants):
                ref = plan.models[position]
                if ref and (position == 0 or spec.weight > 0):
                    model = self._catalog.get(ref)
                    if model is not None:
                        validate_features(model, request.features)
        except Exception:
            PREDICT_ERRORS.labels(experiment_key, "invalid_features").inc()
            raise
        assigned = await self._assigner.assign(experiment_key, request.unit_id, request.attributes)
        index = assigned.decision.variant_index
        variant = assigned.variant
        request_id = uuid.uuid4().hex
        ref = plan.models[index] or plan.models[0]
        assert ref is not None
        call = await self._call(experiment_key, variant, ref, request.features)
        fallback = False
        first_error = call.error
        if call.error is not None and index != 0:
            FALLBACKS.labels(experiment_key, variant, ref).inc()
            logger.warning(
                "variant model failed; answering with control's",
                extra={
                    "experiment": experiment_key,
                    "variant": variant,
                    "model": ref,
                    "reason": call.error.message,
                    "request_id": request_id,
                },
            )
            control_ref = plan.models[0]
            assert control_ref is not None
            call = await self._call(experiment_key, variant, control_ref, request.features)
            fallback = True
        self._publish(
            request, assigned.bucket_version, variant, request_id, call, fallback, first_error
        )
        if assigned.in_experiment and plan.shadows:
            self._start_shadows(request, assigned.bucket_version, plan, request_id)
        PREDICT_LATENCY.labels(experiment_key).observe(time.perf_counter() - start)
        if call.output is None:
            PREDICT_ERRORS.labels(experiment_key, "model_failed").inc()
            assert call.error is not None
            raise DependencyUnavailableError(
                f"the model failed and no fallback answered: {call.error.message}",
                field="model",
            )
        self._served.record(request_id, experiment_key, variant)
        VARIANT_UNITS_SERVED.labels(experiment_key, variant).inc()
        return PredictResponse(
            request_id=request_id,
            prediction=call.output.value,
            probabilities=call.output.probabilities,
            variant=variant,
            model_name=call.model.name,
            model_version=call.model.version,
            fallback=fallback,
            in_experiment=assigned.in_experiment,
            degraded=assigned.degraded,
        )

    async def _call(
        self,
        experiment: str,
        variant: str,
        ref: str,
        features: Mapping[str, Any],
        shadow: bool = False,
    ) -> _Call:
        flag = "true" if shadow else "false"
        model = self._catalog.get(ref)
        if model is None:
            PREDICTIONS.labels(experiment, variant, ref, "error", flag).inc()
            return _Call(_Missing(ref), None, 0.0, ModelError("error", f"{ref}: not loaded"))
        start = time.perf_counter()
        try:
            output = await model.predict(features)
        except ModelError as exc:
            seconds = time.perf_counter() - start
            MODEL_LATENCY.labels(experiment, variant, ref).observe(seconds)
            PREDICTIONS.labels(experiment, variant, ref, exc.kind, flag).inc()
            return _Call(model, None, seconds * 1000, exc)
        seconds = time.perf_counter() - start
        MODEL_LATENCY.labels(experiment, variant, ref).observe(seconds)
        PREDICTIONS.labels(experiment, variant, ref, "ok", flag).inc()
        return _Call(model, output, seconds * 1000, None)

    def _publish(
        self,
        request: PredictRequest,
        bucket_version: int,
        variant: str,
        request_id: str,
        call: _Call,
        fallback: bool,
        first_error: ModelError | None,
        *,
        shadow: bool = False,
    ) -> None:
        error = call.error.message if call.error is not None else None
        if error is None and first_error is not None:
            error = first_error.message  # the variant's failure that caused the fallback
        self._publisher.publish(
            PredictionEvent.model_construct(
                event_id=uuid.uuid4(),
                schema_version=SCHEMA_VERSION,
                event_type="prediction",
                occurred_at=datetime.now(UTC),
                unit_id=request.unit_id,
                experiment_key=request.experiment_key,
                variant=variant,
                bucket_version=bucket_version,
                request_id=request_id,
                model_name=call.model.name,
                model_version=call.model.version,
                shadow=shadow,
                latency_ms=round(call.latency_ms, 3),
                prediction=None if call.output is None else call.output.as_event(),
                fallback=fallback,
                error=error,
            )
        )

    def _start_shadows(
        self, request: PredictRequest, bucket_version: int, plan: Plan, request_id: str
    ) -> None:
        for variant, ref in plan.shadows:
            if len(self._shadow_tasks) >= self._max_shadows:
                SHADOWS_SKIPPED.labels(request.experiment_key).inc()
                continue
            task = asyncio.create_task(
                self._shadow(request, bucket_version, variant, ref, request_id)
            )
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self,
        request: PredictRequest,
        bucket_version: int,
        variant: str,
        ref: str,
        request_id: str,
    ) -> None:
        experiment = request.experiment_key
        try:
            model = self._catalog.get(ref)
            if model is not None:
                validate_features(model, request.features)
            call = await self._call(experiment, variant, ref, request.features, shadow=True)
        except Exception as exc:  # a shadow never affects anything but its own event
            model_or_missing = self._catalog.get(ref) or _Missing(ref)
            error = ModelError("error", f"{ref}: {getattr(exc, 'message', exc)}"[:500])
            PREDICTIONS.labels(experiment, variant, ref, "error", "true").inc()
            call = _Call(model_or_missing, None, 0.0, error)
        self._publish(request, bucket_version, variant, request_id, call, False, None, shadow=True)


class _Missing:
    """Stands for a model reference that is not loaded (its name and version for the event)."""

    def __init__(self, ref: str) -> None:
        name, _, version = ref.partition(":")
        self.name = name
        self.version = version or "unknown"
        self.features: tuple[Feature, ...] = ()
        self.timeout_s = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    async def predict(self, features: Mapping[str, Any]) -> ModelOutput:
        raise ModelError("error", f"{self.ref}: not loaded")

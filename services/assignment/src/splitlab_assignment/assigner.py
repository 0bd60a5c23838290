"""``/assign`` and ``/assign/batch``: cache lookup, one sticky read, the pure decision, one
conditional sticky write, exposure events. No database access.

The pure decision is ``splitlab.assignment.assign``/``assign_all``; this module only gathers
its inputs (the cached definition, the unit's sticky records, the holdout) and acts on its
output (store ``sticky_record`` when ``save_sticky``; publish one exposure per in-experiment
answer; count everything).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from splitlab.assignment import (
    AssignmentDecision,
    HoldoutConfig,
    Reason,
    StickyRecord,
    assign,
    assign_all,
    in_holdout,
)
from splitlab.lifecycle import Status
from splitlab.schemas.events import SCHEMA_VERSION, ExposureEvent
from splitlab.storage.redis_keys import sticky_key
from splitlab.web.errors import NotFoundError
from splitlab_assignment.cache import CachedExperiment, ExperimentCache
from splitlab_assignment.metrics import ASSIGN_LATENCY, ASSIGNMENTS
from splitlab_assignment.schemas import (
    Assignment,
    AssignRequest,
    AssignResponse,
    BatchAssignRequest,
    BatchAssignResponse,
)
from splitlab_assignment.sticky import StickyHash, StickyStore

_EMPTY: Mapping[str, Any] = {}
_SINGLE = ASSIGN_LATENCY.labels("assign")
_BATCH = ASSIGN_LATENCY.labels("assign_batch")


class ExposurePublisher(Protocol):
    """What the service needs of ``splitlab.messaging.publisher.EventPublisher``."""

    def publish(self, event: ExposureEvent) -> None: ...


class AssignmentService:
    def __init__(
        self,
        cache: ExperimentCache,
        sticky: StickyStore,
        publisher: ExposurePublisher,
        holdout: HoldoutConfig | None,
    ) -> None:
        self._cache = cache
        self._sticky = sticky
        self._publisher = publisher
        self._holdout = holdout

    async def assign(self, request: AssignRequest) -> AssignResponse:
        start = time.perf_counter()
        entry = self._cache.get(request.experiment_key)
        if entry is None:
            raise NotFoundError(
                f"no experiment {request.experiment_key!r}; list them with GET /experiments",
                field="experiment_key",
            )
        experiment = entry.definition
        attributes = request.attributes or _EMPTY
        unit_id = request.unit_id
        hash_value = experiment.hash_value(unit_id, attributes)
        degraded = False
        stored = False
        if (
            experiment.status is not Status.RUNNING
            or hash_value is None
            or (self._holdout is not None and in_holdout(unit_id, self._holdout))
        ):
            # Decided before the sticky step: no Redis round trip.
            decision = assign(experiment, unit_id, attributes, None, self._holdout)
        else:
            key = sticky_key(hash_value, experiment.hash_attribute)
            # Hashing is deterministic, so the fresh decision is known before Redis answers:
            # one round trip reads the record and stores the proposal when there is none.
            fresh = assign(experiment, unit_id, attributes, None, None)
            claim = await self._sticky.claim(
                key, experiment.key, fresh.sticky_record if fresh.save_sticky else None
            )
            decision = fresh
            if claim is None:
                degraded = True
            elif claim.stored:
                stored = True
            elif claim.existing is not None:
                decision = assign(experiment, unit_id, attributes, claim.existing, None)
                if decision.save_sticky:  # an outdated record: replace it (rare)
                    stored = await self._sticky.write(
                        {key: {experiment.key: decision.sticky_record}}
                    )
                    degraded = not stored
        self._record(entry, decision, request.unit_id, attributes)
        _SINGLE.observe(time.perf_counter() - start)
        return AssignResponse(
            experiment_key=decision.experiment_key,
            variant=decision.variant_key,
            in_experiment=decision.in_experiment,
            reason=decision.reason,
            sticky=decision.reason is Reason.STICKY or stored,
            bucket_version=decision.bucket_version,
            degraded=degraded,
        )

    async def assign_batch(self, request: BatchAssignRequest) -> BatchAssignResponse:
        start = time.perf_counter()
        entries = self._cache.running()
        attributes = request.attributes or _EMPTY
        unit_id = request.unit_id
        keys: dict[str, str] = {}  # experiment key -> sticky hash key
        for entry in entries:
            value = entry.definition.hash_value(unit_id, attributes)
            if value is not None:
                keys[entry.definition.key] = sticky_key(value, entry.definition.hash_attribute)
        held_out = self._holdout is not None and in_holdout(unit_id, self._holdout)
        degraded = False
        records: dict[str, StickyRecord] = {}
        if keys and not held_out:
            hashes = await self._sticky.read(sorted(set(keys.values())))
            if hashes is None:
                degraded = True
            else:
                records = _records_for(keys, hashes)
        decisions = assign_all(
            (e.definition for e in entries), unit_id, attributes, records, self._holdout
        )
        to_store: dict[str, dict[str, StickyRecord]] = {}
        for decision in decisions:
            if decision.save_sticky:
                key = keys[decision.experiment_key]
                to_store.setdefault(key, {})[decision.experiment_key] = decision.sticky_record
        stored = False
        if to_store and not degraded:
            stored = await self._sticky.write(to_store)
            degraded = not stored
        assignments: list[Assignment] = []
        for entry, decision in zip(entries, decisions, strict=True):
            self._record(entry, decision, unit_id, attributes)
            if decision.in_experiment or request.include_excluded:
                assignments.append(
                    Assignment(
                        experiment_key=decision.experiment_key,
                        variant=decision.variant_key,
                        in_experiment=decision.in_experiment,
                        reason=decision.reason,
                        sticky=decision.reason is Reason.STICKY
                        or (stored and decision.save_sticky),
                        bucket_version=decision.bucket_version,
                    )
                )
        _BATCH.observe(time.perf_counter() - start)
        return BatchAssignResponse(unit_id=unit_id, assignments=assignments, degraded=degraded)

    def _record(
        self,
        entry: CachedExperiment,
        decision: AssignmentDecision,
        unit_id: str,
        attributes: Mapping[str, Any],
    ) -> None:
        ASSIGNMENTS.labels(decision.experiment_key, decision.variant_key, decision.reason).inc()
        if not decision.in_experiment:
            return
        # model_construct with every field given (defaults would cost a signature inspection
        # per factory): every value is already valid (a unit id the request validated, keys
        # and versions from a validated definition); full validation would double the cost.
        self._publisher.publish(
            ExposureEvent.model_construct(
                event_id=uuid.uuid4(),
                schema_version=SCHEMA_VERSION,
                event_type="exposure",
                occurred_at=datetime.now(UTC),
                unit_id=unit_id,
                experiment_key=decision.experiment_key,
                variant=decision.variant_key,
                bucket_version=decision.bucket_version,
                reason="sticky" if decision.reason is Reason.STICKY else "hashed",
                attributes={
                    name: attributes[name]
                    for name in entry.exposure_attributes
                    if name in attributes
                },
            )
        )


def _records_for(
    keys: Mapping[str, str], hashes: Mapping[str, StickyHash]
) -> dict[str, StickyRecord]:
    records: dict[str, StickyRecord] = {}
    for experiment_key, key in keys.items():
        record = hashes.get(key, {}).get(experiment_key)
        if record is not None:
            records[experiment_key] = record
    return records

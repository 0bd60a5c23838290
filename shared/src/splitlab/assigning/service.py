"""``AssignmentService``: cache lookup, one sticky read, the pure decision, one conditional
sticky write, exposure events. No database access.

While nothing since an experiment's start has moved a recorded unit (``allocation_epoch`` 0:
``CachedExperiment.hashing_holds``), every sticky record equals what hashing gives, so the read
is skipped: the answer comes from hashing and the record is written in the background
(``StickyStore.remember``), ready for the first change that makes records matter. From that
change on, every call reads the unit's record first (docs/assignment.md).

The assignment service's ``/assign`` and ``/assign/batch`` and the router's ``/predict`` call
this one class, so a unit gets the same variant, with the same stickiness and the same exposure
event, from either. The pure decision is
``splitlab.core.assignment.decision.assign``/``assign_all``; this module only gathers its inputs
(the cached definition, the unit's sticky records, the holdout) and acts on its output (store
``sticky_record`` when ``save_sticky``; publish one exposure per in-experiment answer; count
everything).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.sticky import StickyHash, StickyStore
from splitlab.assigning.telemetry import ASSIGNMENTS
from splitlab.contracts.events import SCHEMA_VERSION, ExposureEvent
from splitlab.core.assignment.decision import (
    AssignmentDecision,
    HoldoutConfig,
    Reason,
    StickyRecord,
    assign,
    assign_all,
    in_holdout,
)
from splitlab.core.assignment.lifecycle import Status
from splitlab.platform.errors import NotFoundError
from splitlab.platform.storage.redis_keys import sticky_key
from splitlab.platform.telemetry.labels import Children

__all__ = ["Assigned", "AssignmentService", "BatchAssigned", "ExposurePublisher"]

_EMPTY: Mapping[str, Any] = {}
_ASSIGNMENTS = Children(ASSIGNMENTS)


class ExposurePublisher(Protocol):
    """What the service needs of ``splitlab.platform.messaging.publisher.EventPublisher``."""

    def publish(self, event: ExposureEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class Assigned:
    """One answer: the decision, the cached experiment it was made with, and how Redis took it."""

    entry: CachedExperiment
    decision: AssignmentDecision
    sticky: bool
    """The variant is held by a sticky record in Redis (found, or stored by this call)."""
    degraded: bool
    """Redis was not consulted (unreachable): the answer comes from hashing alone."""

    @property
    def experiment_key(self) -> str:
        return self.decision.experiment_key

    @property
    def variant(self) -> str:
        return self.decision.variant_key

    @property
    def in_experiment(self) -> bool:
        return self.decision.in_experiment

    @property
    def reason(self) -> Reason:
        return self.decision.reason

    @property
    def bucket_version(self) -> int:
        return self.decision.bucket_version


@dataclass(frozen=True, slots=True)
class BatchAssigned:
    unit_id: str
    assignments: Sequence[Assigned]
    degraded: bool


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

    @property
    def cache(self) -> ExperimentCache:
        return self._cache

    async def assign(
        self, experiment_key: str, unit_id: str, attributes: Mapping[str, Any] | None = None
    ) -> Assigned:
        """The unit's variant in one experiment; ``NotFoundError`` (404) for an unknown key.

        A non-running experiment answers control with ``in_experiment`` false, never an error.
        """
        entry = self._cache.get(experiment_key)
        if entry is None:
            raise NotFoundError(
                f"no experiment {experiment_key!r}; list them with GET /experiments",
                field="experiment_key",
            )
        experiment = entry.definition
        attrs = _EMPTY if attributes is None else attributes
        hash_value = experiment.hash_value(unit_id, attrs)
        degraded = False
        stored = False
        if (
            experiment.status is not Status.RUNNING
            or hash_value is None
            or (self._holdout is not None and in_holdout(unit_id, self._holdout))
        ):
            # Decided before the sticky step: no Redis round trip.
            decision = assign(experiment, unit_id, attrs, None, self._holdout)
        elif entry.hashing_holds and self._sticky.healthy:
            # Nothing since the start has moved a recorded unit: its record, if any, is this
            # very decision. Answer at once; the record is stored in the background for the day
            # a change makes records matter. (After a Redis failure, the path below waits for
            # Redis until a round trip succeeds, so answers are flagged degraded meanwhile.)
            decision = assign(experiment, unit_id, attrs, None, None)
            if decision.save_sticky:
                key = sticky_key(hash_value, experiment.hash_attribute)
                stored = self._sticky.remember(key, experiment.key, decision.sticky_record)
            degraded = not self._sticky.available
        else:
            key = sticky_key(hash_value, experiment.hash_attribute)
            # Records may differ from hashing: one round trip reads this unit's and stores the
            # fresh decision if it has none (hashing is deterministic, so the proposal is known
            # before Redis answers). The store lands records remembered earlier first.
            fresh = assign(experiment, unit_id, attrs, None, None)
            claim = await self._sticky.claim(
                key, experiment.key, fresh.sticky_record if fresh.save_sticky else None
            )
            decision = fresh
            if claim is None:
                degraded = True
            elif claim.stored:
                stored = True
            elif claim.existing is not None:
                decision = assign(experiment, unit_id, attrs, claim.existing, None)
                if decision.save_sticky:  # an outdated record: replace it (rare)
                    stored = await self._sticky.write(
                        {key: {experiment.key: decision.sticky_record}}
                    )
                    degraded = not stored
        self._record(entry, decision, unit_id, attrs)
        return Assigned(entry, decision, decision.reason is Reason.STICKY or stored, degraded)

    async def assign_batch(
        self,
        unit_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        include_excluded: bool = False,
        experiment_keys: Sequence[str] | None = None,
    ) -> BatchAssigned:
        """The unit's variants in every running experiment it is in (all running ones with
        ``include_excluded``): one sticky read and at most one write for all of them.

        ``experiment_keys`` narrows the batch to those experiments, in that order (duplicates
        once); each must exist (``NotFoundError`` names the first that does not). One that is
        not running is answered as ``/assign`` answers it, listed with ``include_excluded``."""
        entries = self._cache.running() if experiment_keys is None else self._named(experiment_keys)
        attrs = _EMPTY if attributes is None else attributes
        keys: dict[str, str] = {}  # experiment key -> sticky hash key
        for entry in entries:
            value = entry.definition.hash_value(unit_id, attrs)
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
            (e.definition for e in entries), unit_id, attrs, records, self._holdout
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
        assignments: list[Assigned] = []
        for entry, decision in zip(entries, decisions, strict=True):
            self._record(entry, decision, unit_id, attrs)
            if decision.in_experiment or include_excluded:
                sticky = decision.reason is Reason.STICKY or (stored and decision.save_sticky)
                assignments.append(Assigned(entry, decision, sticky, degraded))
        return BatchAssigned(unit_id, assignments, degraded)

    def _named(self, experiment_keys: Sequence[str]) -> tuple[CachedExperiment, ...]:
        entries: dict[str, CachedExperiment] = {}
        for key in experiment_keys:
            entry = self._cache.get(key)
            if entry is None:
                raise NotFoundError(
                    f"experiment_keys: no experiment {key!r}; list them with GET /experiments",
                    field="experiment_keys",
                )
            entries.setdefault(key, entry)
        return tuple(entries.values())

    def _record(
        self,
        entry: CachedExperiment,
        decision: AssignmentDecision,
        unit_id: str,
        attributes: Mapping[str, Any],
    ) -> None:
        _ASSIGNMENTS(decision.experiment_key, decision.variant_key, decision.reason).inc()
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
                allocation_period=entry.allocation_period,
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

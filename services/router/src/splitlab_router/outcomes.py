"""``/outcomes``: feedback from production, turned into outcome events.

Each outcome keeps the caller's ``event_id`` (or gets a fresh one, returned in the answer), so a
caller that retries after a lost answer sends the same event again and the analyzer's sink
stores it once (``ON CONFLICT (event_id) DO NOTHING``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from splitlab.schemas.events import SCHEMA_VERSION, OutcomeEvent
from splitlab.web.errors import InvalidInputError
from splitlab_router.metrics import OUTCOMES, VARIANT_OUTCOME_VALUES, VARIANT_OUTCOMES
from splitlab_router.schemas import OutcomeIn, OutcomesAccepted
from splitlab_router.served import ServedRequests


class OutcomePublisher(Protocol):
    def publish(self, event: OutcomeEvent) -> None: ...


class OutcomeService:
    def __init__(
        self,
        publisher: OutcomePublisher,
        *,
        max_batch: int,
        served: ServedRequests | None = None,
        labelled_types: Sequence[str] = (),
    ) -> None:
        self._publisher = publisher
        self._max_batch = max_batch
        self._served = served if served is not None else ServedRequests(0)
        self._labelled = frozenset(labelled_types)

    def accept(self, outcomes: Sequence[OutcomeIn]) -> OutcomesAccepted:
        if len(outcomes) > self._max_batch:
            raise InvalidInputError(
                f"outcomes: at most {self._max_batch} per request, got {len(outcomes)}; "
                "split the batch",
                field="outcomes",
            )
        now = datetime.now(UTC)
        ids: list[uuid.UUID] = []
        for item in outcomes:
            event_id = item.event_id or uuid.uuid4()
            at = now if item.occurred_at is None else item.occurred_at.astimezone(UTC)
            # Every field was validated by OutcomeIn (finite value, lengths, aware timestamp).
            self._publisher.publish(
                OutcomeEvent.model_construct(
                    event_id=event_id,
                    schema_version=SCHEMA_VERSION,
                    event_type="outcome",
                    occurred_at=at,
                    unit_id=item.unit_id,
                    request_id=item.request_id,
                    outcome_type=item.outcome_type,
                    value=item.value,
                )
            )
            ids.append(event_id)
            experiment, variant = self._served.lookup(item.request_id)
            kind = item.outcome_type if item.outcome_type in self._labelled else "other"
            VARIANT_OUTCOMES.labels(experiment, variant, kind).inc()
            VARIANT_OUTCOME_VALUES.labels(experiment, variant, kind).inc(max(item.value, 0.0))
        OUTCOMES.inc(len(ids))
        return OutcomesAccepted(accepted=len(ids), event_ids=ids)

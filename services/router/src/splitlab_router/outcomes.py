"""``/outcomes``: feedback from production, turned into outcome events.

Each outcome keeps the caller's ``event_id`` (or gets a fresh one, returned in the answer), so a
caller that retries after a lost answer sends the same event again and the analyzer's sink
stores it once (``ON CONFLICT (event_id) DO NOTHING``).

``occurred_at`` must lie within ``window`` of now (``SPLITLAB_ROUTER_OCCURRED_AT_WINDOW_DAYS``,
365 days by default): a time years off is a client bug (a unit mix-up, a zero date), and every
accepted outcome is analysed as happening then. The whole batch is refused, naming the item.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from splitlab.contracts.events import SCHEMA_VERSION, OutcomeEvent
from splitlab.contracts.times import outside_window
from splitlab.platform.errors import InvalidInputError
from splitlab_router.metrics import OUTCOMES, VARIANT_OUTCOME_VALUES, VARIANT_OUTCOMES
from splitlab_router.schemas import OutcomeIn, OutcomesAccepted
from splitlab_router.served import ServedRequests


class OutcomePublisher(Protocol):
    def publish(self, event: OutcomeEvent) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class OutcomeService:
    def __init__(
        self,
        publisher: OutcomePublisher,
        *,
        max_batch: int,
        served: ServedRequests | None = None,
        labelled_types: Sequence[str] = (),
        window: timedelta = timedelta(days=365),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._publisher = publisher
        self._max_batch = max_batch
        self._served = served if served is not None else ServedRequests(0)
        self._labelled = frozenset(labelled_types)
        self._window = window
        self._clock = clock

    def accept(self, outcomes: Sequence[OutcomeIn], *, batch: bool = True) -> OutcomesAccepted:
        """Publish every outcome, or none: ``batch`` says whether they came as ``outcomes``
        (an error then names ``outcomes.<i>.<field>``) or as one object."""
        if len(outcomes) > self._max_batch:
            raise InvalidInputError(
                f"outcomes: at most {self._max_batch} per request, got {len(outcomes)}; "
                "split the batch",
                field="outcomes",
            )
        now = self._clock()
        for index, item in enumerate(outcomes):
            if item.occurred_at is None:
                continue
            problem = outside_window(item.occurred_at, now, self._window)
            if problem is not None:
                field = f"outcomes.{index}.occurred_at" if batch else "occurred_at"
                raise InvalidInputError(
                    f"{field}: {problem} (SPLITLAB_ROUTER_OCCURRED_AT_WINDOW_DAYS); send the "
                    "time the outcome happened, or omit it for now",
                    field=field,
                )
        ids: list[uuid.UUID] = []
        for item in outcomes:
            event_id = item.event_id or uuid.uuid4()
            at = now if item.occurred_at is None else item.occurred_at
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

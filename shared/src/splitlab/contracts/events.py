"""The event contract (ARCHITECTURE.md): what travels through Kafka, keyed by unit id, as JSON.

Every event carries ``event_id`` (the idempotency key), ``schema_version``, ``event_type``,
``occurred_at`` (RFC 3339, UTC) and ``unit_id``. Consumers parse with ``parse_event``, which
refuses unknown versions and missing fields with a reason fit for the dead-letter topic.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from splitlab.contracts.times import UtcDatetime
from splitlab.contracts.topics import topic_for
from splitlab.contracts.values import BoundedValue

SCHEMA_VERSION: Literal[1] = 1

UnitId = Annotated[str, Field(min_length=1, max_length=256)]
Key = Annotated[str, Field(min_length=1, max_length=200)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: UtcDatetime = Field(default_factory=utc_now)
    unit_id: UnitId

    @property
    def topic(self) -> str:
        return topic_for(self.event_type)  # type: ignore[attr-defined]

    def key(self) -> bytes:
        return self.unit_id.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ExposureEvent(EventBase):
    event_type: Literal["exposure"] = "exposure"
    experiment_key: Key
    variant: Key
    bucket_version: int = Field(ge=0)
    reason: Literal["sticky", "hashed"]
    attributes: dict[str, Any] = Field(default_factory=dict)
    allocation_period: int = Field(default=0, ge=0)
    """The experiment's allocation period (its split) when the exposure was decided; the
    analyzer keeps the one of the unit's first exposure. Absent (older producers): 0."""


class PredictionEvent(EventBase):
    event_type: Literal["prediction"] = "prediction"
    experiment_key: Key
    variant: Key
    bucket_version: int = Field(ge=0)
    request_id: Key
    model_name: Key
    model_version: Key
    shadow: bool = False
    latency_ms: float = Field(ge=0)
    prediction: Any = None
    fallback: bool = False
    error: str | None = None


class OutcomeEvent(EventBase):
    event_type: Literal["outcome"] = "outcome"
    request_id: str | None = Field(default=None, max_length=200)
    outcome_type: Key
    value: BoundedValue


Event = Annotated[ExposureEvent | PredictionEvent | OutcomeEvent, Field(discriminator="event_type")]
_EVENT = TypeAdapter(Event)


class InvalidEventError(ValueError):
    """A message that is not a valid event; ``reason`` is what the dead-letter topic records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_event(raw: bytes | str) -> ExposureEvent | PredictionEvent | OutcomeEvent:
    try:
        return _EVENT.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<event>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise InvalidEventError(problems) from None

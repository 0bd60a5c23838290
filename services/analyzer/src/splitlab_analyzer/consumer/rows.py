"""Raw Kafka records -> rows of the event tables, or dead letters with a reason (pure).

A record is valid when it parses with the event contract (``splitlab.contracts.events``) and its
``event_type`` belongs on the topic it came from. Everything else becomes a :class:`DeadLetter`
carrying the reason and the record's origin (topic, partition, offset), so nothing is dropped
silently and nothing stops the consumer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from splitlab.contracts.events import (
    ExposureEvent,
    InvalidEventError,
    OutcomeEvent,
    PredictionEvent,
    parse_event,
)
from splitlab.contracts.topics import EVENT_TOPICS, EventType

TABLE_COLUMNS: dict[EventType, tuple[str, ...]] = {
    "exposure": (
        "event_id",
        "schema_version",
        "occurred_at",
        "unit_id",
        "experiment_key",
        "variant",
        "bucket_version",
        "reason",
        "attributes",
        "allocation_period",
    ),
    "prediction": (
        "event_id",
        "schema_version",
        "occurred_at",
        "unit_id",
        "experiment_key",
        "variant",
        "bucket_version",
        "request_id",
        "model_name",
        "model_version",
        "shadow",
        "latency_ms",
        "prediction",
        "fallback",
        "error",
    ),
    "outcome": (
        "event_id",
        "schema_version",
        "occurred_at",
        "unit_id",
        "request_id",
        "outcome_type",
        "value",
    ),
}
TABLES: dict[EventType, str] = {
    "exposure": "exposures",
    "prediction": "predictions",
    "outcome": "outcomes",
}

Row = tuple[object, ...]


@dataclass(frozen=True)
class RawRecord:
    """What the loop needs of a Kafka ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    record: RawRecord

    def to_bytes(self) -> bytes:
        """The dead-letter message: reason, origin and the original payload."""
        payload = self.record.value or b""
        try:
            text: str | None = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        body: dict[str, Any] = {
            "reason": self.reason,
            "topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "key": self.record.key.decode("utf-8", "replace") if self.record.key else None,
            "payload": text,
            "payload_base64": None if text is not None else base64.b64encode(payload).decode(),
            "dead_lettered_at": datetime.now(UTC).isoformat(),
        }
        return json.dumps(body).encode()


@dataclass
class Batch:
    """Rows per event type and dead letters of one poll cycle."""

    rows: dict[EventType, list[Row]] = field(
        default_factory=lambda: {"exposure": [], "prediction": [], "outcome": []}
    )
    dead_letters: list[DeadLetter] = field(default_factory=list)
    sources: dict[EventType, list[RawRecord]] = field(
        default_factory=lambda: {"exposure": [], "prediction": [], "outcome": []}
    )
    """The record each row came from (same order), to dead-letter a row the database refuses."""
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """Next offset to commit per (topic, partition): the last offset seen + 1."""
    records: int = 0

    @property
    def event_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def exposure_row(e: ExposureEvent) -> Row:
    return (
        e.event_id,
        e.schema_version,
        e.occurred_at,
        e.unit_id,
        e.experiment_key,
        e.variant,
        e.bucket_version,
        e.reason,
        json.dumps(e.attributes),
        e.allocation_period,
    )


def prediction_row(e: PredictionEvent) -> Row:
    return (
        e.event_id,
        e.schema_version,
        e.occurred_at,
        e.unit_id,
        e.experiment_key,
        e.variant,
        e.bucket_version,
        e.request_id,
        e.model_name,
        e.model_version,
        e.shadow,
        e.latency_ms,
        None if e.prediction is None else json.dumps(e.prediction),
        e.fallback,
        e.error,
    )


def outcome_row(e: OutcomeEvent) -> Row:
    return (
        e.event_id,
        e.schema_version,
        e.occurred_at,
        e.unit_id,
        e.request_id,
        e.outcome_type,
        e.value,
    )


def topic_types(topics: Mapping[EventType, str] | None = None) -> dict[str, EventType]:
    """Topic name -> the event type that belongs on it."""
    return {topic: kind for kind, topic in (topics or EVENT_TOPICS).items()}


def build_batch(records: Iterable[RawRecord], topics: Mapping[str, EventType]) -> Batch:
    """Parse every record; valid ones become rows, the rest dead letters."""
    batch = Batch()
    for record in records:
        batch.records += 1
        origin = (record.topic, record.partition)
        batch.offsets[origin] = max(batch.offsets.get(origin, 0), record.offset + 1)
        if record.value is None:
            batch.dead_letters.append(DeadLetter("empty message (no value)", record))
            continue
        try:
            event = parse_event(record.value)
        except InvalidEventError as exc:
            batch.dead_letters.append(DeadLetter(f"invalid event: {exc.reason}", record))
            continue
        expected = topics.get(record.topic)
        if expected is not None and event.event_type != expected:
            batch.dead_letters.append(
                DeadLetter(
                    f"event_type {event.event_type!r} does not belong on topic "
                    f"{record.topic!r} (expects {expected!r})",
                    record,
                )
            )
            continue
        if isinstance(event, ExposureEvent):
            row = exposure_row(event)
        elif isinstance(event, PredictionEvent):
            row = prediction_row(event)
        else:
            row = outcome_row(event)
        if any(isinstance(v, str) and "\x00" in v for v in row):
            batch.dead_letters.append(
                DeadLetter("invalid event: a text field holds a NUL character", record)
            )
            continue
        batch.rows[event.event_type].append(row)
        batch.sources[event.event_type].append(record)
    return batch

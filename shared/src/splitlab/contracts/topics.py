"""Kafka topic names: built here and nowhere else (ARCHITECTURE.md, event contract)."""

from __future__ import annotations

from typing import Final, Literal

EventType = Literal["exposure", "prediction", "outcome"]

EXPOSURES: Final = "splitlab.exposures.v1"
PREDICTIONS: Final = "splitlab.predictions.v1"
OUTCOMES: Final = "splitlab.outcomes.v1"
DEAD_LETTER: Final = "splitlab.dead-letter.v1"

EVENT_TOPICS: Final[dict[EventType, str]] = {
    "exposure": EXPOSURES,
    "prediction": PREDICTIONS,
    "outcome": OUTCOMES,
}
ALL_TOPICS: Final[tuple[str, ...]] = (EXPOSURES, PREDICTIONS, OUTCOMES, DEAD_LETTER)


def topic_for(event_type: EventType) -> str:
    try:
        return EVENT_TOPICS[event_type]
    except KeyError:
        raise ValueError(
            f"event_type must be one of {sorted(EVENT_TOPICS)}, got {event_type!r}"
        ) from None

"""Prometheus series of the ingestion process (``SPLITLAB_ANALYZER_CONSUMER_METRICS_PORT``).

Labels are bounded: ``topic`` is one of the event topics, ``partition`` a partition number.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

EVENTS_INGESTED = Counter(
    "splitlab_analyzer_events_ingested",
    "Events written to Postgres for the first time, by source topic.",
    ["topic"],
)
EVENTS_DUPLICATE = Counter(
    "splitlab_analyzer_events_duplicate",
    "Valid events already in Postgres (replays, redeliveries): ignored by event_id.",
    ["topic"],
)
DEAD_LETTERS = Counter(
    "splitlab_analyzer_dead_letters",
    "Messages sent to the dead-letter topic, by the topic they came from.",
    ["topic"],
)
BATCH_SECONDS = Histogram(
    "splitlab_analyzer_batch_duration_seconds",
    "Time to parse, write and commit one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_EVENTS = Histogram(
    "splitlab_analyzer_batch_events",
    "Kafka records per batch.",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
)
CONSUMER_LAG = Gauge(
    "splitlab_analyzer_consumer_lag",
    "Records of a partition not yet consumed by this process (high watermark - position).",
    ["topic", "partition"],
)
DB_WRITE_FAILURES = Counter(
    "splitlab_analyzer_db_write_failures",
    "Failed batch writes to Postgres (each is retried with back-off; nothing is committed).",
)
CONSUMER_PAUSED = Gauge(
    "splitlab_analyzer_consumer_paused",
    "1 while consumption is paused because Postgres refuses writes, else 0.",
)


def initialise(topics: Iterable[str]) -> None:
    """Create every topic's labelled children at 0 at start-up. A child that first appears at
    its first increment has no earlier sample, so ``increase()`` over it stays 0 and the
    ``SplitLabDeadLetters`` alert would miss the first dead letters."""
    for topic in topics:
        for counter in (EVENTS_INGESTED, EVENTS_DUPLICATE, DEAD_LETTERS):
            counter.labels(topic)

"""Entry point of the ingestion process: ``splitlab-analyzer-consumer`` (or
``python -m splitlab_analyzer.consumer``).

Builds its clients through ``splitlab.platform.connections``, serves its Prometheus metrics on
``SPLITLAB_ANALYZER_CONSUMER_METRICS_PORT``, and stops gracefully on SIGTERM or SIGINT: the
batch in hand is written and committed, then the consumer leaves the group.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from prometheus_client import start_http_server

from splitlab.contracts.topics import DEAD_LETTER, EVENT_TOPICS, EventType
from splitlab.platform.connections import (
    create_db_engine,
    create_kafka_consumer,
    create_kafka_producer,
)
from splitlab.platform.settings import Settings, load_settings
from splitlab.platform.telemetry.logs import configure_logging
from splitlab_analyzer.consumer import metrics
from splitlab_analyzer.consumer.loop import IngestLoop
from splitlab_analyzer.consumer.rows import topic_types
from splitlab_analyzer.consumer.sink import PostgresSink

logger = logging.getLogger(__name__)


def run(
    settings: Settings,
    stop: threading.Event,
    *,
    topics: Mapping[EventType, str] | None = None,
    dead_letter_topic: str = DEAD_LETTER,
    serve_metrics: bool = True,
) -> None:
    """Consume until ``stop`` is set. ``topics`` overrides the event topics (tests)."""
    event_topics = dict(topics or EVENT_TOPICS)
    metrics.initialise(event_topics.values())
    if serve_metrics and settings.analyzer_consumer_metrics_port:
        try:
            start_http_server(
                settings.analyzer_consumer_metrics_port,
                addr=settings.analyzer_consumer_metrics_host,
            )
        except OSError as exc:  # another consumer on this host holds the port: keep consuming
            logger.warning(
                "metrics port unavailable; not serving /metrics",
                extra={"port": settings.analyzer_consumer_metrics_port, "error": str(exc)},
            )
    engine = create_db_engine(settings, pool_size=1, max_overflow=1)
    consumer = create_kafka_consumer(
        settings,
        *event_topics.values(),
        group_id=settings.analyzer_consumer_group,
        max_poll_records=settings.analyzer_batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    producer = create_kafka_producer(settings, linger_ms=20)
    loop = IngestLoop(
        consumer,
        PostgresSink(engine),
        producer,
        dead_letter_topic=dead_letter_topic,
        topics=topic_types(event_topics),
        batch_size=settings.analyzer_batch_size,
        batch_wait_ms=settings.analyzer_batch_wait_ms,
        retry_initial_seconds=settings.analyzer_retry_initial_seconds,
        retry_max_seconds=settings.analyzer_retry_max_seconds,
    )
    logger.info(
        "ingestion started",
        extra={"group": settings.analyzer_consumer_group, "topics": list(event_topics.values())},
    )
    try:
        loop.run(stop)
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings()
    configure_logging("analyzer-consumer", settings.log_level, settings.log_format)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run(settings, stop)


if __name__ == "__main__":
    main()

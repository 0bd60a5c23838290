"""Fault test: the analyzer's Kafka broker is SIGKILLed while the consumer works through a
backlog, kept down a few seconds, and started again on the same data folder.

The real consumer (a private broker, the shared Postgres) waits out the outage without
crashing, busy-looping or logging a traceback per poll, and resumes by itself once the broker
is back: every event produced before and after the outage is stored exactly once, none is
dead-lettered, and the group's committed offsets reach the end of every partition."""

from __future__ import annotations

import logging
import resource
import time
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from sqlalchemy import Engine, text

from splitlab.contracts.events import ExposureEvent, OutcomeEvent
from splitlab.platform.settings import Settings
from tests.integration.analyzer.conftest import (
    all_committed,
    consumer_thread,
    end_offsets,
    produce,
    wait_until,
)
from tests.support.kafka_broker import KafkaBroker

pytestmark = pytest.mark.integration

BACKLOG_UNITS = 6000  # an exposure and an outcome each: 12,000 events waiting before the kill
AFTER_UNITS = 1000
OUTAGE_SECONDS = 4.0


@pytest.fixture
def private_topics(private_kafka: KafkaBroker) -> dict[str, str]:
    """The event topics and a dead-letter topic, 3 partitions each, on the private broker."""
    tag = uuid.uuid4().hex[:10]
    names = {k: f"splitlab.test.{k}.{tag}" for k in ("exposure", "prediction", "outcome", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=private_kafka.bootstrap_servers)
    try:
        admin.create_topics(
            [NewTopic(n, num_partitions=3, replication_factor=1) for n in names.values()]
        )
    finally:
        admin.close()
    return names


def events(experiment: str, start: int, units: int) -> list[ExposureEvent | OutcomeEvent]:
    made: list[ExposureEvent | OutcomeEvent] = []
    for i in range(start, start + units):
        unit = f"{experiment}-u{i}"
        made.append(
            ExposureEvent(unit_id=unit, experiment_key=experiment, variant="control",
                          bucket_version=0, reason="hashed")
        )  # fmt: skip
        made.append(OutcomeEvent(unit_id=unit, outcome_type=experiment, value=1.0))
    return made


def stored_ids(engine: Engine, experiment: str) -> list[str]:
    """This test's stored event ids, one entry per row (exposures and outcomes)."""
    sql = (
        "SELECT event_id FROM exposures WHERE experiment_key = :k "
        "UNION ALL SELECT event_id FROM outcomes WHERE outcome_type = :k"
    )
    with engine.connect() as connection:
        return [str(r[0]) for r in connection.execute(text(sql), {"k": experiment})]


def stored_count(engine: Engine, experiment: str) -> int:
    sql = (
        "SELECT (SELECT count(*) FROM exposures WHERE experiment_key = :k) "
        "+ (SELECT count(*) FROM outcomes WHERE outcome_type = :k)"
    )
    with engine.connect() as connection:
        return int(connection.execute(text(sql), {"k": experiment}).scalar_one())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tracebacks(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.exc_info is not None]


def test_kafka_killed_mid_stream_the_same_consumer_recovers_and_loses_nothing(
    analyzer_settings: Settings,
    engine: Engine,
    private_kafka: KafkaBroker,
    private_topics: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = analyzer_settings.model_copy(
        update={"kafka_bootstrap_servers": private_kafka.bootstrap_servers}
    )
    bootstrap = own.kafka_bootstrap_servers
    experiment = f"kafka-outage-{uuid.uuid4().hex[:8]}"
    event_topic_names = [private_topics[kind] for kind in ("exposure", "outcome")]
    backlog = events(experiment, 0, BACKLOG_UNITS)
    after = events(experiment, BACKLOG_UNITS, AFTER_UNITS)
    produce(bootstrap, private_topics, backlog)
    caplog.set_level(logging.INFO, logger="splitlab_analyzer")
    with consumer_thread(own, private_topics):
        wait_until(lambda: stored_count(engine, experiment) >= 1000, 30, "the first batches")
        private_kafka.kill()
        at_kill = stored_count(engine, experiment)
        assert at_kill < len(backlog), "the backlog was consumed before the kill"

        # While the broker is down: the consumer thread waits quietly (no busy loop).
        cpu_before = cpu_seconds()
        time.sleep(OUTAGE_SECONDS)
        cpu_down = cpu_seconds() - cpu_before
        assert cpu_down < 0.25 * OUTAGE_SECONDS, f"{cpu_down:.2f} s of CPU while Kafka was down"

        private_kafka.start()  # same data folder: topics and committed offsets survive
        produce(bootstrap, private_topics, after)
        total = len(backlog) + len(after)
        # The same consumer (never restarted) reconnects, rejoins its group and catches up.
        wait_until(lambda: stored_count(engine, experiment) >= total, 40, f"all {total} events")
        wait_until(
            lambda: all_committed(own, event_topic_names), 20, "every offset to be committed"
        )
        time.sleep(0.5)  # anything doubled late would show now
        stored = stored_ids(engine, experiment)

    assert len(stored) == len(set(stored)), "an event was stored twice"
    expected = {str(e.event_id) for e in [*backlog, *after]}
    assert set(stored) == expected, f"{len(expected - set(stored))} events missing"
    dead = end_offsets(bootstrap, [private_topics["dlq"]])
    assert sum(dead.values()) == 0, "events were dead-lettered during the outage"
    # Quiet through the outage: the analyzer logs no error and no traceback, a few warnings at
    # most (the failed offset commit), not one per poll (the loop polls every 200 ms, some
    # hundred times while the broker is down and restarting). kafka-python's own connection
    # errors carry at most one traceback per connection that was open at the kill.
    own_logs = [r for r in caplog.records if r.name.startswith("splitlab_analyzer")]
    assert [r.getMessage() for r in own_logs if r.levelno >= logging.ERROR] == []
    assert tracebacks(own_logs) == []
    assert len([r for r in own_logs if r.levelno == logging.WARNING]) <= 5
    assert len(tracebacks(caplog.records)) <= 5

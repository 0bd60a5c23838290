"""Fault test: the analyzer's Postgres is SIGKILLed while events stream in, then started again.

The real consumer (shared Kafka, a private Postgres) pauses and retries the batch in hand,
commits no offsets while the database is down, and resumes by itself once it is back: every
event produced before, during and after the outage is stored exactly once, and none is
dead-lettered."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, text

from splitlab.contracts.events import ExposureEvent, OutcomeEvent
from splitlab.platform.settings import Settings
from tests.integration.analyzer.conftest import (
    all_committed,
    committed_offsets,
    consumer_thread,
    end_offsets,
    wait_until,
)
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 4.0
EVENTS_PER_TICK = 50  # every 25 ms: 2,000 events a second
TABLES = {"exposure": "exposures", "outcome": "outcomes"}


class SteadyProducer(threading.Thread):
    """Produces exposures and outcomes at a steady rate until stopped; remembers every id."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        super().__init__(name="steady-producer", daemon=True)
        self.topics = topics
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
        self.ids: dict[str, set[str]] = {kind: set() for kind in TABLES}
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.experiment = f"pg-outage-{uuid.uuid4().hex[:8]}"

    @property
    def produced(self) -> int:
        with self.lock:
            return sum(len(ids) for ids in self.ids.values())

    def run(self) -> None:
        unit = 0
        while not self.halt.is_set():
            for _ in range(EVENTS_PER_TICK // 2):
                name = f"{self.experiment}-u{unit}"
                unit += 1
                exposure = ExposureEvent(
                    unit_id=name, experiment_key=self.experiment, variant="control",
                    bucket_version=0, reason="hashed",
                )  # fmt: skip
                outcome = OutcomeEvent(unit_id=name, outcome_type="pg-outage", value=1.0)
                for event in (exposure, outcome):
                    self.producer.send(
                        self.topics[event.event_type], event.to_bytes(), key=event.key()
                    )
                    with self.lock:
                        self.ids[event.event_type].add(str(event.event_id))
            time.sleep(0.025)

    def finish(self) -> None:
        self.halt.set()
        self.join(10)
        self.producer.flush(30)
        self.producer.close()


def stored_ids(engine: Engine) -> dict[str, list[str]]:
    """Every stored event id (the database is this test's own), one entry per row."""
    with engine.connect() as connection:
        return {
            kind: [str(r[0]) for r in connection.execute(text(f"SELECT event_id FROM {table}"))]
            for kind, table in TABLES.items()
        }


def stored_count(engine: Engine) -> int:
    with engine.connect() as connection:
        sql = "SELECT (SELECT count(*) FROM exposures) + (SELECT count(*) FROM outcomes)"
        return int(connection.execute(text(sql)).scalar_one())


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def private_engine(private_postgres: PostgresServer) -> Iterator[Engine]:
    engine = create_engine(private_postgres.url, pool_pre_ping=True)
    yield engine
    engine.dispose()


def test_postgres_killed_mid_stream_loses_and_doubles_nothing(
    analyzer_settings: Settings,
    event_topics: dict[str, str],
    private_postgres: PostgresServer,
    private_engine: Engine,
) -> None:
    own = analyzer_settings.model_copy(update={"database_url": private_postgres.url})
    bootstrap = own.kafka_bootstrap_servers
    event_topic_names = [event_topics[kind] for kind in TABLES]
    producer = SteadyProducer(bootstrap, event_topics)
    failures_before = metric("splitlab_analyzer_db_write_failures_total")
    with consumer_thread(own, event_topics):
        producer.start()
        try:
            wait_until(lambda: stored_count(private_engine) >= 1000, 30, "the first batches")
            private_engine.dispose()  # its pooled connections die with the server
            private_postgres.kill()
            at_kill = producer.produced

            # While Postgres is down: the consumer pauses, retries, and commits nothing.
            wait_until(lambda: metric("splitlab_analyzer_consumer_paused") == 1, 10, "a pause")
            assert metric("splitlab_analyzer_db_write_failures_total") > failures_before
            offsets_down = committed_offsets(own)
            time.sleep(OUTAGE_SECONDS)
            assert committed_offsets(own) == offsets_down, "offsets moved while Postgres was down"
            assert metric("splitlab_analyzer_consumer_paused") == 1
            during = producer.produced - at_kill
            assert during >= 1000, f"only {during} events were produced during the outage"

            private_postgres.start()
            time.sleep(1.0)  # events keep coming after the restart too
        finally:
            producer.finish()
        expected = producer.ids
        total = producer.produced
        # The same consumer (never restarted) catches up on its own.
        wait_until(lambda: stored_count(private_engine) >= total, 40, f"all {total} events")
        time.sleep(0.5)  # anything doubled late would show now
        stored = stored_ids(private_engine)
        wait_until(
            lambda: all_committed(own, event_topic_names), 15, "every offset to be committed"
        )
        paused_after = metric("splitlab_analyzer_consumer_paused")

    for kind, ids in expected.items():
        assert len(stored[kind]) == len(set(stored[kind])), f"{kind}: an event stored twice"
        assert set(stored[kind]) == ids, f"{kind}: {len(ids - set(stored[kind]))} missing"
    assert paused_after == 0
    dead = end_offsets(bootstrap, [event_topics["dlq"]])
    assert sum(dead.values()) == 0, "events were dead-lettered during the outage"

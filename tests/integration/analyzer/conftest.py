"""Fixtures for the analyzer against the real stack: fresh topics, a consumer thread, the app."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from pydantic import SecretStr
from sqlalchemy import Engine, insert

from splitlab.contracts.events import ExposureEvent
from splitlab.contracts.topics import EventType
from splitlab.platform.settings import Settings
from splitlab.platform.storage.models import Experiment
from splitlab.web.state import app_state
from splitlab_analyzer.app import create_app
from splitlab_analyzer.consumer.main import run
from splitlab_analyzer.consumer.rows import RawRecord, build_batch
from splitlab_analyzer.consumer.sink import PostgresSink
from splitlab_assignment.deps import AssignmentState
from tests.integration.analyzer.simulation import METRICS, Event
from tests.support.stack import StackEndpoints
from tests.support.waiting import wait_until as wait_until  # the analyzer tests import it here

ADMIN_KEY = "analyzer-test-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def event_topics(stack: StackEndpoints) -> Iterator[dict[str, str]]:
    """Fresh 3-partition topics: the three event topics and a dead-letter topic."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    tag = uuid.uuid4().hex[:10]
    names = {k: f"splitlab.test.{k}.{tag}" for k in ("exposure", "prediction", "outcome", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
    admin.create_topics(
        [NewTopic(n, num_partitions=3, replication_factor=1) for n in names.values()]
    )
    yield names
    admin.delete_topics(list(names.values()))
    admin.close()


@pytest.fixture
def analyzer_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "admin_api_key": SecretStr(ADMIN_KEY),
            "analyzer_consumer_group": f"analyzer-test-{uuid.uuid4().hex[:8]}",
            # CUPAC requests go to a queue no worker of another test session listens to.
            "trainer_queue": f"splitlab.trainer.test-{uuid.uuid4().hex[:8]}",
            "analyzer_consumer_metrics_port": 0,
            "analyzer_batch_size": 500,
            "analyzer_batch_wait_ms": 200,
            "analyzer_refresh_interval_seconds": 0.0,
            "analyzer_rollup_catch_up_seconds": 0.0,
            "analyzer_retry_initial_seconds": 0.2,
            "analyzer_retry_max_seconds": 1.0,
        }
    )


def event_topic_map(topics: dict[str, str]) -> dict[EventType, str]:
    return {"exposure": topics["exposure"], "prediction": topics["prediction"],
            "outcome": topics["outcome"]}  # fmt: skip


def produce(bootstrap: str, topics: dict[str, str], events: list[Event]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    for event in events:
        producer.send(topics[event.event_type], event.to_bytes(), key=event.key())
    producer.flush(60)
    producer.close()


def produce_raw(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for payload in payloads:
        producer.send(topic, payload, key=b"raw")
    producer.flush(30)
    producer.close()


@contextlib.contextmanager
def consumer_thread(settings: Settings, topics: dict[str, str]) -> Iterator[threading.Event]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(settings, stop, topics=event_topic_map(topics), dead_letter_topic=topics["dlq"],
                serve_metrics=False)  # fmt: skip
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=target, name="ingest", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the consumer did not stop"
    assert not errors, errors


def insert_experiment(engine: Engine, row: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(Experiment).values(**row))


@pytest.fixture
def analyzer(analyzer_settings: Settings, redis_client: Any) -> Iterator[TestClient]:
    with TestClient(create_app(analyzer_settings)) as client:
        yield client


def define_metrics(client: TestClient) -> None:
    """Create the simulation's metrics (a 409 means another test made them: same bodies)."""
    for body in METRICS:
        response = client.post("/metrics", json=body, headers=ADMIN)
        assert response.status_code in (201, 409), response.text


def committed_offsets(settings: Settings) -> dict[TopicPartition, int]:
    """The analyzer group's committed offsets (``settings.analyzer_consumer_group``)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        group = settings.analyzer_consumer_group
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        return {tp: int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def all_committed(settings: Settings, topics: list[str]) -> bool:
    """Whether the group has committed up to the end of every partition of ``topics``."""
    committed = committed_offsets(settings)
    ends = end_offsets(settings.kafka_bootstrap_servers, topics)
    return all(committed.get(tp, 0) == end for tp, end in ends.items())


# An experiment run through the real assignment app (registry in Redis, /assign's service),
# its exposures collected in memory and written with the consumer's own rows and sink.


class CollectingPublisher:
    def __init__(self) -> None:
        self.events: list[ExposureEvent] = []

    def publish(self, event: ExposureEvent) -> None:
        self.events.append(event)


@pytest.fixture
def exposures() -> CollectingPublisher:
    return CollectingPublisher()


@pytest.fixture
def assignment(
    analyzer_settings: Settings, redis_client: Any, exposures: CollectingPublisher
) -> Iterator[TestClient]:
    from splitlab_assignment.app import create_app as create_assignment_app

    app = create_assignment_app(
        analyzer_settings.model_copy(update={"admin_api_key": SecretStr(ADMIN_KEY)}),
        publisher_factory=lambda _settings: exposures,  # type: ignore[arg-type,return-value]
    )
    with TestClient(app) as client:
        yield client


def assign(assignment: TestClient, key: str, units: list[str]) -> None:
    """``/assign``'s service in the app's event loop, unit after unit (the HTTP layer of
    thousands of calls would only slow the test: ``assign_http`` covers it)."""
    service = app_state(assignment.app, AssignmentState).assigner.service

    async def run() -> None:
        for unit in units:
            answer = await service.assign(key, unit, None)
            assert answer.in_experiment, answer
            assert not answer.degraded, answer

    assert assignment.portal is not None
    assignment.portal.call(run)


def write(engine: Engine, events: list[Any]) -> None:
    records = [RawRecord(e.topic, 0, i, e.key(), e.to_bytes()) for i, e in enumerate(events)]
    batch = build_batch(records, {})
    assert not batch.dead_letters
    PostgresSink(engine).write(batch.rows)

"""Fault test: a private Kafka broker is killed while a client sends thousands of /predict and
/outcomes requests, then started again. Zero requests fail, and every event the router
produced (before, during and after the outage) is found in Kafka afterwards, by count and id."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from kafka import KafkaConsumer
from sqlalchemy import Engine

from splitlab.contracts.events import Event
from splitlab.contracts.topics import EXPOSURES, OUTCOMES, PREDICTIONS
from splitlab.platform.messaging.admin import ensure_topics
from splitlab.platform.messaging.publisher import EventPublisher
from splitlab.platform.settings import Settings
from splitlab_client import SplitLabClient
from splitlab_router.app import create_app
from tests.integration.router.conftest import (
    Setup,
    insert_experiment,
    register,
    train_models,
    wait_for_experiment,
)
from tests.support.kafka_broker import KafkaBroker

X = {"x1": 0.1, "x2": 0.2}


class RecordingPublisher(EventPublisher):
    """The real publisher, remembering the id of every event handed to it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, service="router-fault", retry_seconds=0.5)
        self.ids: list[str] = []
        self._ids_lock = threading.Lock()

    def publish(self, event: Event) -> None:
        with self._ids_lock:
            self.ids.append(str(event.event_id))
        super().publish(event)


class InProcess:
    """The client's HTTP calls into the app in this process (TestClient takes no timeout)."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def post(self, url: str, *, json: Any, headers: Any, timeout: float) -> Any:
        return self.http.post(url, json=json, headers=headers)

    def close(self) -> None:
        return None


def wait_until(
    check: Callable[[], bool],
    seconds: float,
    what: str,
    state: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} {state()}")


def consume_ids(bootstrap: str, expected: int, timeout: float = 90.0) -> list[str]:
    consumer = KafkaConsumer(
        EXPOSURES,
        PREDICTIONS,
        OUTCOMES,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(set(ids)) < expected:
            for batch in consumer.poll(timeout_ms=500).values():
                ids.extend(json.loads(m.value)["event_id"] for m in batch)
    finally:
        consumer.close()
    return ids


def test_no_request_fails_and_no_event_is_lost_while_kafka_is_down(
    router_settings: Settings, engine: Engine, ab: Setup, private_kafka: KafkaBroker
) -> None:
    own = router_settings.model_copy(
        update={"kafka_bootstrap_servers": private_kafka.bootstrap_servers}
    )
    ensure_topics(own)
    publishers: list[RecordingPublisher] = []

    def factory(settings: Settings) -> RecordingPublisher:
        publisher = RecordingPublisher(settings)
        publisher.start()
        publishers.append(publisher)
        return publisher

    train_models(own)
    failures: list[Any] = []
    with TestClient(create_app(own, publisher_factory=factory)) as http:
        register(http, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
        register(http, ab.names["b"], "1", flavor="sklearn", artifact="b.joblib")
        insert_experiment(
            engine,
            ab.key,
            [
                {"key": "control", "weight": 0.5, "model": f"{ab.names['a']}:1"},
                {"key": "treatment", "weight": 0.5, "model": f"{ab.names['b']}:1"},
            ],
        )
        wait_for_experiment(http, ab.key, X)
        (publisher,) = publishers
        wait_until(lambda: publisher.kafka_up, 60, "the publisher to reach Kafka")
        client = SplitLabClient(
            "http://testserver",
            "http://testserver",
            http=InProcess(http),  # type: ignore[arg-type]
            timeout=5.0,
        )

        def traffic(predicts: int, outcomes: int, tag: str) -> None:
            for i in range(max(predicts, outcomes)):
                unit = f"{tag}-{i % 400}"
                if i < predicts:
                    answer = client.predict(unit, ab.key, X)
                    if answer.fallback or answer.request_id is None:
                        failures.append(answer)
                if i < outcomes:
                    receipt = client.send_outcome(unit, "click", 1.0, request_id=f"{tag}-{i}")
                    if not receipt.delivered:
                        failures.append(receipt)

        traffic(200, 100, "before")
        private_kafka.kill()
        outage_start = len(publisher.ids)
        traffic(1500, 1000, "during")
        outage_ids = publisher.ids[outage_start:]
        wait_until(lambda: not publisher.kafka_up, 150, "the publisher to notice the outage")
        assert publisher.pending() > 0, "events of the outage wait in the spool"
        private_kafka.start()
        wait_until(
            lambda: publisher.pending() == 0 and publisher.kafka_up,
            120,
            "the spool replay",
            lambda: f"pending {publisher.pending()}, status {publisher.status()}",
        )
        traffic(100, 100, "after")
    publisher.close(timeout=30)

    assert failures == [], f"{len(failures)} failed requests"
    sent = publisher.ids
    # 1,500 predictions and exposures and 1,000 outcomes were produced during the outage alone.
    assert len(outage_ids) == 1500 * 2 + 1000
    assert len(set(sent)) == len(sent)
    received = consume_ids(private_kafka.bootstrap_servers, expected=len(sent))
    missing = set(sent) - set(received)
    assert not missing, (
        f"{len(missing)} events missing, {len(set(outage_ids) & missing)} of them from the outage"
    )
    assert set(outage_ids) <= set(received)
    assert len(set(received)) == len(sent)

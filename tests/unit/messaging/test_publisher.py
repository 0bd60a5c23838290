"""EventPublisher's routing between Kafka and the spool, with an in-memory producer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from splitlab.contracts.events import OutcomeEvent
from splitlab.platform.messaging.publisher import EventPublisher
from splitlab.platform.settings import Settings


class FakeFuture:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def add_callback(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.error is None:
            fn(None, *args)

    def add_errback(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.error is not None:
            fn(self.error, *args)

    def succeeded(self) -> bool:
        return self.error is None


class FakeBroker:
    """A broker that can be switched off; records what it acknowledged, in order."""

    def __init__(self) -> None:
        self.up = True
        self.received: list[tuple[str, bytes, bytes]] = []
        self.lock = threading.Lock()

    def producer(self) -> FakeProducer:
        if not self.up:
            raise ConnectionError("no brokers available")
        return FakeProducer(self)

    def event_ids(self) -> list[str]:
        with self.lock:
            return [json.loads(value)["event_id"] for _, value, _ in self.received]


class FakeProducer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    def send(self, topic: str, value: bytes, key: bytes) -> FakeFuture:
        if not self.broker.up:
            return FakeFuture(ConnectionError("broker went away"))
        with self.broker.lock:
            self.broker.received.append((topic, value, key))
        return FakeFuture(None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass

    def partitions_for(self, topic: str) -> set[int] | None:
        return {0} if self.broker.up else None


def events(n: int, start: int = 0) -> list[OutcomeEvent]:
    return [
        OutcomeEvent(unit_id=f"u{i}", outcome_type="click", value=1.0)
        for i in range(start, start + n)
    ]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]


def make(settings: Settings, broker: FakeBroker, **kwargs: Any) -> EventPublisher:
    publisher = EventPublisher(
        settings, service="test", producer_factory=broker.producer, retry_seconds=0.05, **kwargs
    )
    publisher.start()
    return publisher


def test_events_reach_kafka_keyed_by_unit_on_their_topic(settings: Settings) -> None:
    broker = FakeBroker()
    publisher = make(settings, broker)
    sent = events(100)
    for event in sent:
        publisher.publish(event)
    wait_until(lambda: len(broker.received) == 100 and publisher.pending() == 0)
    publisher.close()
    assert {topic for topic, _, _ in broker.received} == {"splitlab.outcomes.v1"}
    assert sorted(broker.event_ids()) == sorted(str(e.event_id) for e in sent)
    assert all(key == json.loads(value)["unit_id"].encode() for _, value, key in broker.received)


def test_outage_spools_then_replays_every_event_in_order(settings: Settings) -> None:
    broker = FakeBroker()
    broker.up = False
    publisher = make(settings, broker)
    during = events(300)
    for event in during:
        publisher.publish(event)
    time.sleep(0.2)
    assert broker.received == []
    assert publisher.pending() == 300
    assert not publisher.kafka_up
    broker.up = True
    wait_until(lambda: publisher.pending() == 0 and publisher.kafka_up)
    after = events(50, start=300)
    for event in after:
        publisher.publish(event)
    wait_until(lambda: len(broker.received) == 350)
    publisher.close()
    assert broker.event_ids() == [str(e.event_id) for e in [*during, *after]]


def test_failed_sends_are_retried_until_kafka_acknowledges(settings: Settings) -> None:
    broker = FakeBroker()
    publisher = make(settings, broker)
    wait_until(lambda: publisher.kafka_up)
    broker.up = False  # the producer exists, but its sends now fail
    lost_then_found = events(40)
    for event in lost_then_found:
        publisher.publish(event)
    wait_until(lambda: not publisher.kafka_up)
    assert publisher.pending() == 40
    broker.up = True
    wait_until(lambda: publisher.pending() == 0)
    publisher.close()
    assert broker.event_ids() == [str(e.event_id) for e in lost_then_found]


def test_publish_is_a_local_append_even_with_kafka_down(settings: Settings) -> None:
    broker = FakeBroker()
    broker.up = False
    publisher = make(settings, broker)
    batch = events(2000)
    started = time.perf_counter()
    for event in batch:
        publisher.publish(event)
    elapsed = time.perf_counter() - started
    publisher.close(timeout=1)
    # A network call per event would take milliseconds each; a local append, microseconds.
    assert elapsed / len(batch) < 0.001


def test_events_spooled_before_a_crash_are_shipped_by_the_next_process(
    settings: Settings,
) -> None:
    broker = FakeBroker()
    broker.up = False
    first = make(settings, broker)
    spooled = events(25)
    for event in spooled:
        first.publish(event)
    first.close(timeout=1)  # the process ends with Kafka still down

    broker.up = True
    second = make(settings, broker)
    assert second._backlog_at_start == 25, "the next process finds what the first left"
    wait_until(lambda: second.pending() == 0 and len(broker.received) == 25)
    second.close()
    assert broker.event_ids() == [str(e.event_id) for e in spooled]


def test_two_publishers_of_one_service_never_share_a_spool(settings: Settings) -> None:
    broker = FakeBroker()
    one, two = make(settings, broker), make(settings, broker)
    assert one._spools is not None
    assert two._spools is not None
    assert one._spools.own != two._spools.own
    one.close()
    two.close()

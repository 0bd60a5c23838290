"""Nothing is lost when the broker dies: the publisher against a real Kafka that we kill."""

from __future__ import annotations

import time
import uuid

from splitlab.contracts.events import OutcomeEvent, parse_event
from splitlab.contracts.topics import OUTCOMES
from splitlab.platform.messaging.admin import ensure_topics
from splitlab.platform.messaging.publisher import EventPublisher
from splitlab.platform.settings import Settings
from tests.support.kafka_broker import KafkaBroker
from tests.support.waiting import wait_until


def consume_all(bootstrap: str, expected: int, timeout_s: float = 60) -> dict[str, list[bytes]]:
    """Every record of the outcomes topic: its bytes by event id (a duplicate adds a second)."""
    from kafka import KafkaConsumer
    from kafka.partitioner.default import murmur2

    consumer = KafkaConsumer(
        OUTCOMES,
        bootstrap_servers=bootstrap,
        group_id=f"verify-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    partitions = len(consumer.partitions_for_topic(OUTCOMES))
    records: dict[str, list[bytes]] = {}
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for message in consumer:
            event = parse_event(message.value)
            assert message.key == event.unit_id.encode()
            # The partition the Java client and kafka-python choose for the key.
            assert message.partition == (murmur2(message.key) & 0x7FFFFFFF) % partitions
            records.setdefault(str(event.event_id), []).append(message.value)
    consumer.close()
    return records


def test_events_published_while_kafka_is_dead_all_arrive_after_it_returns(
    settings: Settings, private_kafka: KafkaBroker
) -> None:
    own = settings.model_copy(update={"kafka_bootstrap_servers": private_kafka.bootstrap_servers})
    ensure_topics(own)
    publisher = EventPublisher(own, service="fault-test", retry_seconds=0.5)
    publisher.start()
    sent: dict[str, bytes] = {}

    def publish(n: int) -> None:
        for _ in range(n):
            event = OutcomeEvent(unit_id=f"unit-{len(sent)}", outcome_type="click", value=1.0)
            publisher.publish(event)
            sent[str(event.event_id)] = event.to_bytes()

    wait_until(lambda: publisher.kafka_up, 30, "the publisher to reach Kafka")
    publish(500)
    private_kafka.kill()
    started = time.perf_counter()
    publish(1500)  # while the broker is dead
    publishing_took = time.perf_counter() - started
    wait_until(lambda: not publisher.kafka_up, 60, "the shipper to notice the outage")
    assert publisher.pending() > 0, "events of the outage wait in the spool"

    private_kafka.start()
    wait_until(lambda: publisher.pending() == 0 and publisher.kafka_up, 120, "the replay")
    publish(200)  # and straight to Kafka again
    publisher.close(timeout=30)

    received = consume_all(private_kafka.bootstrap_servers, expected=len(sent))
    assert set(received) == set(sent), f"missing {len(set(sent) - set(received))} events"
    for event_id, values in received.items():
        # Records are the spooled bytes; a batch resent after the outage may arrive twice.
        assert set(values) == {sent[event_id]}
    # publish() never waited on the dead broker: 1,500 calls took a fraction of a second.
    assert publishing_took < 2.0

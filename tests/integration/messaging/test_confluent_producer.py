"""The shipper's confluent-kafka producer against the real broker: every record acknowledged,
with its key, its bytes and the partition kafka-python would have chosen; and failures (no
broker, a flush that runs out of time, a full queue) reported as failures."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from confluent_kafka import KafkaException
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from splitlab.contracts.events import OutcomeEvent
from splitlab.platform.connections import create_confluent_producer
from splitlab.platform.messaging.confluent_producer import ConfluentProducer
from splitlab.platform.settings import Settings
from tests.support.stack import StackEndpoints


def settings_for(bootstrap: str) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap, _env_file=None)  # type: ignore[call-arg]


def nothing_listening() -> str:
    """A loopback address where no broker is (a port just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


def read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 30
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend((r.partition, r.key, r.value) for r in batch)
    time.sleep(0.5)  # anything beyond the expected count (a duplicate) shows up here
    for batch in consumer.poll(timeout_ms=500).values():
        records.extend((r.partition, r.key, r.value) for r in batch)
    consumer.close()
    return records


def test_every_record_is_acknowledged_with_its_key_bytes_and_partition(
    stack: StackEndpoints, topic: str
) -> None:
    producer = create_confluent_producer(settings_for(stack.kafka_bootstrap_servers))
    assert producer.partitions_for(topic) == {0, 1, 2}
    events = [
        OutcomeEvent(unit_id=f"unit-{i}-{uuid.uuid4().hex[:6]}", outcome_type="click", value=i)
        for i in range(3000)
    ]
    sent = [(event.unit_id.encode(), event.to_bytes()) for event in events]
    for batch in (sent[:1000], sent[1000:]):  # two flushes: each batch has its own results
        futures = [producer.send(topic, value=value, key=key) for key, value in batch]
        producer.flush(timeout=30)
        assert all(future.succeeded() for future in futures)
    assert len(producer) == 0
    producer.close(timeout=5)

    received = read_all(stack.kafka_bootstrap_servers, topic, expected=len(sent))
    assert sorted((key, value) for _, key, value in received) == sorted(sent), (
        "each record once, key and bytes as sent"
    )
    for partition, key, _ in received:
        # The Java client's and kafka-python's partition for the key: units keep their partition.
        assert partition == (murmur2(key) & 0x7FFFFFFF) % 3


def test_records_to_a_dead_broker_are_reported_failed() -> None:
    producer = create_confluent_producer(
        settings_for(nothing_listening()), message_timeout_ms=1500, request_timeout_ms=1000
    )
    futures = [producer.send("splitlab.outcomes.v1", value=b"{}", key=b"u") for _ in range(10)]
    started = time.monotonic()
    producer.flush(timeout=30)  # returns once every record failed (message timeout: 1.5 s)
    assert time.monotonic() - started < 10
    assert not any(future.succeeded() for future in futures)
    started = time.monotonic()
    producer.close(timeout=0)
    assert time.monotonic() - started < 2, "discarding a producer never waits on the network"


def test_a_flush_that_runs_out_of_time_is_a_failure() -> None:
    producer = create_confluent_producer(
        settings_for(nothing_listening()), message_timeout_ms=60_000
    )
    future = producer.send("splitlab.outcomes.v1", value=b"{}", key=b"u")
    with pytest.raises(TimeoutError):
        producer.flush(timeout=0.5)
    assert not future.succeeded()
    started = time.monotonic()
    producer.close(timeout=0)  # the record still queued is purged (the spool keeps it)
    assert time.monotonic() - started < 2
    assert future.failed == 1


def test_a_full_queue_fails_the_send_once_waiting_does_not_help() -> None:
    producer = ConfluentProducer(
        {
            "bootstrap.servers": nothing_listening(),
            "enable.idempotence": True,
            "queue.buffering.max.messages": 5,
            "message.timeout.ms": 60_000,
        },
        queue_full_timeout_seconds=0.3,
    )
    batch = [producer.send("splitlab.outcomes.v1", value=b"{}", key=b"u") for _ in range(5)]
    with pytest.raises(BufferError):
        producer.send("splitlab.outcomes.v1", value=b"{}", key=b"u")
    assert batch[0].sent == 5, "the refused record is not counted as sent"
    producer.close(timeout=0)
    assert not batch[0].succeeded()


def test_a_full_queue_waits_for_room_while_the_broker_acknowledges(
    stack: StackEndpoints, topic: str
) -> None:
    producer = ConfluentProducer(
        {
            "bootstrap.servers": stack.kafka_bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "queue.buffering.max.messages": 50,
        }
    )
    futures = [producer.send(topic, value=b"{}", key=f"u{i}".encode()) for i in range(500)]
    producer.flush(timeout=30)
    assert futures[0].sent == 500
    assert all(future.succeeded() for future in futures)
    producer.close(timeout=5)


def test_the_probe_raises_without_a_broker_or_without_the_topic(
    stack: StackEndpoints,
) -> None:
    dead = create_confluent_producer(settings_for(nothing_listening()))
    with pytest.raises(KafkaException):
        dead.partitions_for("splitlab.outcomes.v1")
    dead.close(timeout=0)
    live = create_confluent_producer(settings_for(stack.kafka_bootstrap_servers))
    with pytest.raises(KafkaException):
        live.partitions_for(f"splitlab.test.missing-{uuid.uuid4().hex[:8]}")
    live.close(timeout=0)

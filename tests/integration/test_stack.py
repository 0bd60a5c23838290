"""The real infrastructure round trips every other part of SplitLab stands on."""

from __future__ import annotations

import json
import uuid

import redis
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from splitlab.platform.storage.migrate import current_revision, head_revision
from splitlab.platform.storage.models import Base
from tests.support.stack import StackEndpoints


def test_redis_round_trip_with_expiry(redis_client: redis.Redis) -> None:
    key = f"splitlab:test:{uuid.uuid4().hex}"
    redis_client.hset(key, mapping={"variant": "treatment", "bucket_version": "2"})
    redis_client.expire(key, 60)
    assert redis_client.hgetall(key) == {"variant": "treatment", "bucket_version": "2"}
    assert 0 < redis_client.ttl(key) <= 60


def test_migration_reaches_head_and_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"exposures", "predictions", "outcomes", "alembic_version"} <= tables
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration for: {diff}"


def test_event_tables_ignore_a_duplicate_event_id(engine: Engine) -> None:
    event_id = uuid.uuid4()
    insert = text(
        "INSERT INTO outcomes (event_id, schema_version, occurred_at, unit_id, outcome_type, value)"
        " VALUES (:id, 1, now(), 'u1', 'click', 1.0) ON CONFLICT (event_id) DO NOTHING"
    )
    with engine.begin() as connection:
        first = connection.execute(insert, {"id": event_id}).rowcount
        second = connection.execute(insert, {"id": event_id}).rowcount
        count = connection.execute(
            text("SELECT count(*) FROM outcomes WHERE event_id = :id"), {"id": event_id}
        ).scalar_one()
    assert (first, second, count) == (1, 0, 1)


def test_kafka_round_trip_through_a_consumer_group_with_committed_offsets(
    stack: StackEndpoints, topic: str
) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(
        bootstrap_servers=stack.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    sent = {f"unit-{i}": {"event_id": str(uuid.uuid4()), "value": i} for i in range(30)}
    for unit, event in sent.items():
        producer.send(topic, key=unit.encode(), value=json.dumps(event).encode())
    producer.flush(timeout=30)
    producer.close()

    group = f"splitlab-test-{uuid.uuid4().hex[:8]}"

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(
            topic,
            bootstrap_servers=stack.kafka_bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
        )

    first = consumer()
    received: dict[str, dict[str, object]] = {}
    for message in first:
        received[message.key.decode()] = json.loads(message.value)
        if len(received) == len(sent):
            break
    first.commit()
    first.close()
    assert received == sent

    # A new member of the same group sees the committed offsets and resumes after them.
    second = consumer()
    partitions = [TopicPartition(topic, p) for p in (0, 1, 2)]
    committed = {tp: second.committed(tp) for tp in partitions}
    assert sum(offset or 0 for offset in committed.values()) == len(sent)
    assert all(offset for offset in committed.values()), "every partition got messages"
    assert second.poll(timeout_ms=3000) == {}
    assert all(second.position(tp) == committed[tp] for tp in second.assignment())
    second.close()

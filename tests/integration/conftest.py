"""Fixtures for tests that talk to the real Redis, Postgres and Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import Engine, create_engine

from splitlab.platform.settings import Settings
from splitlab.platform.storage.migrate import upgrade
from tests.support.databases import own_database
from tests.support.kafka_broker import KafkaBroker
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.stack import (
    StackEndpoints,
    docker_engine_answers,
    from_environment,
    from_testcontainers,
    native,
    port_open,
    unavailable,
)


@pytest.fixture(scope="session")
def stack() -> Iterator[StackEndpoints]:
    with ExitStack() as containers:
        endpoints = from_environment()
        if endpoints is None:
            endpoints = from_testcontainers(containers) if docker_engine_answers() else native()
        for name, url in (
            ("Postgres", endpoints.database_url),
            ("Redis", endpoints.redis_url),
            ("Kafka", f"kafka://{endpoints.kafka_bootstrap_servers.split(',')[0]}"),
        ):
            parts = urlsplit(url)
            if not port_open(parts.hostname or "127.0.0.1", parts.port or 0):
                unavailable(f"{name} at {parts.hostname}:{parts.port} ({endpoints.source})")
        yield endpoints


@pytest.fixture(scope="session")
def migrated_database(stack: StackEndpoints) -> Iterator[str]:
    """A database of this test session's own, migrated to head, dropped at the end.

    Its own, so that two sessions (two developers, or a developer and CI) never wipe each
    other's tables: the configured test database only serves to create it.
    """
    with own_database(stack.database_url) as url:
        yield url


@pytest.fixture
def engine(migrated_database: str) -> Iterator[Engine]:
    engine = create_engine(migrated_database)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_client(stack: StackEndpoints) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(stack: StackEndpoints, migrated_database: str, tmp_path: Path) -> Settings:
    """Settings for a service under test, pointing at the real stack's test resources."""
    return Settings(
        environment="test",
        database_url=migrated_database,
        redis_url=stack.redis_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        celery_broker_url=stack.redis_url.rsplit("/", 1)[0] + "/14",
        celery_result_backend=stack.redis_url.rsplit("/", 1)[0] + "/13",
        state_dir=tmp_path / "state",
        log_format="text",
        access_log=False,
        health_timeout_seconds=3.0,
        # The pre-flight check would ask whatever analyzer and router the default URLs reach
        # (the developer's running services); test_preflight turns it on with its own.
        preflight_checks=False,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def topic(stack: StackEndpoints) -> Iterator[str]:
    """A fresh 3-partition topic for one test, deleted afterwards."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"splitlab.test.{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    yield name
    admin.delete_topics([name])
    admin.close()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own, which the test may kill."""
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (no persistence), which the test may kill."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A Postgres of this test's own, migrated to head, which the test may kill."""
    server = PostgresServer(tmp_path / "postgres")
    try:
        server.start()
        upgrade(server.url)
        yield server
    finally:
        server.close()

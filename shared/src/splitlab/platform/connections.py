"""The one place where SplitLab builds its external clients.

Services call these from their startup code (FastAPI lifespan, Celery worker init, consumer
main) and pass the clients on; nothing connects at import time. Each factory only configures;
connections open lazily on first use, so a service starts even when a dependency is down and
``/readyz`` says which one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.messaging.kafka_compat import close_sockets_of_failed_connects
from splitlab.platform.settings import Settings

if TYPE_CHECKING:
    import httpcore
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    from splitlab.platform.messaging.confluent_producer import ConfluentProducer


def kafka_api_version(settings: Settings) -> tuple[int, ...]:
    return tuple(int(part) for part in settings.kafka_api_version.split("."))


def create_db_engine(settings: Settings, **overrides: Any) -> Engine:
    """A pooled SQLAlchemy engine for ``settings.database_url``."""
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "connect_args": {
            "connect_timeout": max(1, int(settings.health_timeout_seconds)),
            # A server that vanished without closing the connection (host down, network split)
            # fails the call within about a minute instead of the kernel's two hours: keepalive
            # probes while waiting for an answer, a bound on unacknowledged data while sending.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": 60_000,
        },
    }
    options.update(overrides)
    return create_engine(settings.database_url, **options)


def create_celery_client(settings: Settings) -> Any:
    """A Celery app that only *sends* tasks by name (``splitlab.platform.training``, the console's
    ``splitlab.console.analysis``) to the trainer's broker and reads their state from its
    result backend; the services that call it depend on ``celery[redis]``. Nothing connects
    until the first send."""
    from celery import Celery

    client = Celery(
        "splitlab-client",
        broker=settings.celery_broker_url,
        backend=settings.celery_result_backend,
    )
    client.conf.update(
        task_default_queue=settings.trainer_queue,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_transport_options={
            "visibility_timeout": int(settings.trainer_visibility_timeout_seconds)
        },
    )
    return client


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def create_redis(settings: Settings, url: str | None = None) -> redis.Redis:
    """A redis-py client (with its own connection pool) with short timeouts."""
    return redis.Redis.from_url(
        url or settings.redis_url,
        socket_connect_timeout=settings.health_timeout_seconds,
        socket_timeout=settings.health_timeout_seconds,
        health_check_interval=30,
        decode_responses=True,
    )


def create_async_redis(
    settings: Settings, url: str | None = None, timeout: float | None = None
) -> redis.asyncio.Redis:
    """An asyncio redis-py client for hot paths (``/assign``'s sticky store).

    ``timeout`` (default ``sticky_redis_timeout_seconds``) bounds connecting and each reply, and
    redis-py's own retries are off: the caller decides what a failure means (a degraded answer),
    and a retry with back-off would hold the request for seconds.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    seconds = settings.sticky_redis_timeout_seconds if timeout is None else timeout
    return redis.asyncio.Redis.from_url(
        url or settings.redis_url,
        socket_connect_timeout=seconds,
        socket_timeout=seconds,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def create_kafka_admin(settings: Settings, timeout_ms: int | None = None) -> KafkaAdminClient:
    """A Kafka admin client. Raises ``kafka.errors.NoBrokersAvailable`` if none answers."""
    from kafka import KafkaAdminClient

    close_sockets_of_failed_connects()
    timeout = timeout_ms or int(settings.health_timeout_seconds * 1000)
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        client_id=f"{settings.kafka_client_id}-admin",
        request_timeout_ms=max(timeout, 1000),
        bootstrap_timeout_ms=timeout,
    )


def create_kafka_consumer(settings: Settings, *topics: str, **overrides: Any) -> KafkaConsumer:
    """A Kafka consumer in a group, committing offsets only when told to."""
    from kafka import KafkaConsumer

    close_sockets_of_failed_connects()
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": f"{settings.kafka_client_id}-consumer",
        "api_version": kafka_api_version(settings),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # Try a broker that went away at least every 5 s (kafka-python's default grows to 30 s):
        # ingestion resumes within seconds of its return, for one error line per try meanwhile.
        "reconnect_backoff_max_ms": 5_000,
    }
    options.update(overrides)
    return KafkaConsumer(*topics, **options)


def create_kafka_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A Kafka producer with ``acks=all`` and idempotence, JSON-ready (values are bytes).

    ``max_block_ms`` is small: ``send()`` must never stall a request thread for a minute when
    the broker is gone; callers spool what cannot be sent (see ``splitlab.platform.messaging``).
    """
    from kafka import KafkaProducer

    close_sockets_of_failed_connects()
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": f"{settings.kafka_client_id}-producer",
        # A known protocol version: the producer is built without asking a broker, so a
        # service starts (and spools) while Kafka is down instead of failing.
        "api_version": kafka_api_version(settings),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_block_ms": 2000,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
        "retries": 5,
        "compression_type": None,
    }
    options.update(overrides)
    return KafkaProducer(**options)


def create_confluent_producer(settings: Settings, **overrides: Any) -> ConfluentProducer:
    """The spool shipper's producer: confluent-kafka (librdkafka), ``acks=all`` and idempotence.

    Keys and values are bytes; overrides name librdkafka properties with underscores for dots
    (``message_timeout_ms=2000``). ``partitioner`` is the Java client's (and kafka-python's)
    murmur2, so a unit's events land on the same partition whichever client produced them.
    Nothing connects here: librdkafka connects in the background, so a shipper starts (and
    waits) while Kafka is down.
    """
    from splitlab.platform.messaging.confluent_producer import ConfluentProducer

    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": f"{settings.kafka_client_id}-producer",
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "request.timeout.ms": 5_000,
        # Past this every record is acknowledged or failed (the shipper flushes with a longer
        # timeout, and resends from its cursor after a failure).
        "message.timeout.ms": 15_000,
        "compression.type": "none",
        # Reconnect to a broker that went away at least every second (default: up to 10 s),
        # so the spool starts draining as soon as it is back.
        "reconnect.backoff.max.ms": 1_000,
        "log.connection.close": False,
    }
    config.update({name.replace("_", "."): value for name, value in overrides.items()})
    return ConfluentProducer(config)


def create_model_server_pool(settings: Settings, **overrides: Any) -> httpcore.AsyncConnectionPool:
    """The connection pool of one remote model server (the router keeps one per server).

    Keep-alive connections are reused for ``keepalive_expiry`` seconds; ``max_connections``
    bounds the calls in flight to one server. No proxies from the environment: model servers
    are internal and called directly."""
    import httpcore

    options: dict[str, Any] = {
        "max_connections": 200,
        "max_keepalive_connections": 50,
        "keepalive_expiry": 30.0,
        "retries": 0,
    }
    options.update(overrides)
    return httpcore.AsyncConnectionPool(**options)

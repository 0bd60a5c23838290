"""Where the integration tests find real Redis, Postgres and Kafka.

In order: service URLs from the environment (``SPLITLAB_TEST_DATABASE_URL``,
``SPLITLAB_TEST_REDIS_URL``, ``SPLITLAB_TEST_KAFKA_BOOTSTRAP_SERVERS``); else testcontainers when
a Docker engine answers; else the native stack that ``make test`` starts (infra/stack.sh).
Under ``CI=true`` an unreachable service fails the test; elsewhere it skips with the fix.
"""

from __future__ import annotations

import os
import shutil
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("SPLITLAB_STACK_DIR", REPO / ".stack"))


@dataclass(frozen=True)
class StackEndpoints:
    database_url: str
    redis_url: str
    kafka_bootstrap_servers: str
    source: str


def unavailable(what: str) -> None:
    message = f"{what} is not reachable; start the native stack with `make stack-up`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def system_tool(command: str) -> str:
    """The path of a system tool from ``infra/tools.txt``; fails under CI (skips elsewhere)
    with the fix when it is not installed."""
    path = shutil.which(command)
    if path is None:
        message = f"{command} is not installed; `make tools` installs it (infra/tools.txt)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert path is not None
    return path


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def docker_engine_answers() -> bool:
    """True when a Docker engine accepts connections (testcontainers needs one)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    import docker

    client = docker.from_env(timeout=2)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def from_environment() -> StackEndpoints | None:
    names = (
        "SPLITLAB_TEST_DATABASE_URL",
        "SPLITLAB_TEST_REDIS_URL",
        "SPLITLAB_TEST_KAFKA_BOOTSTRAP_SERVERS",
    )
    values = [os.environ.get(n) for n in names]
    if not all(values):
        return None
    database_url, redis_url, kafka = (v for v in values if v)
    return StackEndpoints(database_url, redis_url, kafka, "environment")


def from_testcontainers(stack: ExitStack) -> StackEndpoints:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    postgres = stack.enter_context(PostgresContainer("postgres:15", driver="psycopg2"))
    redis = stack.enter_context(RedisContainer("redis:7"))
    kafka = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft())
    redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/15"
    return StackEndpoints(
        postgres.get_connection_url(), redis_url, kafka.get_bootstrap_server(), "testcontainers"
    )


def native() -> StackEndpoints:
    pg_port = os.environ.get("SPLITLAB_STACK_POSTGRES_PORT", "5432")
    redis_port = os.environ.get("SPLITLAB_STACK_REDIS_PORT", "6379")
    kafka_port = os.environ.get("SPLITLAB_STACK_KAFKA_PORT", "9092")
    return StackEndpoints(
        database_url=f"postgresql+psycopg2://splitlab:splitlab@127.0.0.1:{pg_port}/splitlab_test",
        redis_url=f"redis://127.0.0.1:{redis_port}/15",
        kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
        source="native stack",
    )

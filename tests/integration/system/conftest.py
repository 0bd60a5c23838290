"""The whole platform as ``make up`` runs it (infra/services.sh: the four services, the
analyzer's consumer and the Celery worker as real processes), on ports, a state folder, a
database and a consumer group of the test's own, driven by the simulator."""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from splitlab.contracts.topics import EVENT_TOPICS
from splitlab.simulation.demo import ensure_metrics, ensure_models
from splitlab.simulation.driver import Endpoints
from tests.support.databases import own_database
from tests.support.kafka_broker import free_port
from tests.support.stack import REPO, StackEndpoints

SERVICES = ("assignment", "router", "analyzer", "trainer")


@dataclass(frozen=True)
class Platform:
    endpoints: Endpoints
    database_url: str
    kafka_bootstrap_servers: str
    state: Path
    trainer_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    """The environment the processes were started with (every ``SPLITLAB_*`` setting)."""

    def admin(self) -> httpx.Client:
        return httpx.Client(timeout=120.0, headers=self.endpoints.admin_headers())


def services(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "infra" / "services.sh"), action],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def start_group_at_the_end(bootstrap: str, group: str) -> None:
    """Commit the event topics' current end offsets for ``group`` before its consumer starts.

    A new consumer group reads every topic from its beginning (``auto_offset_reset`` earliest:
    in production nothing is skipped), and the platform's topics are the shared stack's fixed
    ones: a fresh group first ingested every event earlier tests, the demo and the benchmarks
    had left there, which delayed the drill's first results by about two minutes (its exposures
    ingested 120 s after they were sent) and its alerts past their timeout. The group of a
    test's platform starts at the test's own events."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in EVENT_TOPICS.values()
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ends.items()})
    finally:
        consumer.close()


@contextmanager
def running_platform(
    stack: StackEndpoints, database_url: str, state: Path, **settings: str
) -> Iterator[Platform]:
    """The four services, the consumer and the worker on free ports (``settings``: more
    ``SPLITLAB_*`` variables, which win over the defaults below), stopped at the end."""
    admin_key = secrets.token_urlsafe(24)
    redis_base = stack.redis_url.rsplit("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_ENVIRONMENT="test",
        SPLITLAB_STATE_DIR=str(state),
        SPLITLAB_DATABASE_URL=database_url,
        SPLITLAB_REDIS_URL=stack.redis_url,
        SPLITLAB_KAFKA_BOOTSTRAP_SERVERS=stack.kafka_bootstrap_servers,
        SPLITLAB_CELERY_BROKER_URL=f"{redis_base}/12",
        SPLITLAB_CELERY_RESULT_BACKEND=f"{redis_base}/11",
        SPLITLAB_ADMIN_API_KEY=admin_key,
        SPLITLAB_ASSIGN_API_KEY="",
        SPLITLAB_ACCESS_LOG="false",
        SPLITLAB_ANALYZER_CONSUMER_GROUP=f"system-test-{uuid.uuid4().hex[:8]}",
        SPLITLAB_ANALYZER_CONSUMER_METRICS_PORT="0",
        # The tests refresh results themselves; no background refresh races them.
        SPLITLAB_ANALYZER_REFRESH_INTERVAL_SECONDS="0",
    )
    for name in SERVICES:
        env[f"SPLITLAB_{name.upper()}_URL"] = f"http://127.0.0.1:{free_port()}"
    env.update(settings)
    start_group_at_the_end(stack.kafka_bootstrap_servers, env["SPLITLAB_ANALYZER_CONSUMER_GROUP"])
    started = services(env, "up")
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        endpoints = Endpoints(
            assignment_url=env["SPLITLAB_ASSIGNMENT_URL"],
            router_url=env["SPLITLAB_ROUTER_URL"],
            analyzer_url=env["SPLITLAB_ANALYZER_URL"],
            admin_key=admin_key,
        )
        platform = Platform(
            endpoints,
            database_url,
            stack.kafka_bootstrap_servers,
            state,
            trainer_url=env["SPLITLAB_TRAINER_URL"],
            env=env,
        )
        with platform.admin() as client:
            ensure_models(client, endpoints, state / "models")
            ensure_metrics(client, endpoints)
        yield platform
    finally:
        services(env, "down")


@pytest.fixture(scope="module")
def platform(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # A database of its own: other modules of the session define metrics of the same names.
    with (
        own_database(stack.database_url, "splitlab_system") as database_url,
        running_platform(stack, database_url, tmp_path_factory.mktemp("platform")) as platform,
    ):
        yield platform

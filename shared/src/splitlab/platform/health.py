"""Readiness checks that really ping SplitLab's dependencies.

A check is a name and a blocking callable that raises when the dependency is not usable.
``run_checks`` runs them concurrently in threads, each bounded by a timeout, and reports which
ones are down and why. Services list their checks at startup; ``/readyz`` runs them.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, text

from splitlab.platform.settings import Settings


@dataclass(frozen=True)
class DependencyCheck:
    name: str
    ping: Callable[[], object]


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    up: bool
    latency_ms: float
    error: str | None = None


def postgres_check(engine: Engine) -> DependencyCheck:
    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return DependencyCheck("postgres", ping)


def redis_check(client: redis.Redis, name: str = "redis") -> DependencyCheck:
    def ping() -> None:
        if not client.ping():
            raise ConnectionError("redis did not answer PING")

    return DependencyCheck(name, ping)


def kafka_check(settings: Settings) -> DependencyCheck:
    """Asks the cluster for its topic list through a fresh admin client.

    A fresh client each time is deliberate: a cached one can keep answering from stale metadata
    after the broker died.
    """
    from splitlab.platform.connections import create_kafka_admin

    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]

    def ping() -> None:
        # A plain TCP connect first: a dead broker is reported at once, and kafka-python's
        # failed bootstrap (which leaks its sockets) is never entered.
        if not any(_accepts(server, settings.health_timeout_seconds) for server in servers):
            raise ConnectionError(f"no Kafka broker accepts connections at {','.join(servers)}")
        admin = create_kafka_admin(settings)
        try:
            admin.list_topics()
        finally:
            admin.close()

    return DependencyCheck("kafka", ping)


def _accepts(server: str, timeout: float) -> bool:
    host, _, port = server.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout):
            return True
    except (OSError, ValueError):
        return False


def _timed(check: DependencyCheck) -> CheckOutcome:
    start = time.perf_counter()
    try:
        check.ping()
    except Exception as exc:
        elapsed = (time.perf_counter() - start) * 1000
        message = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return CheckOutcome(check.name, False, elapsed, message[:300])
    return CheckOutcome(check.name, True, (time.perf_counter() - start) * 1000)


async def run_checks(checks: Sequence[DependencyCheck], timeout: float) -> list[CheckOutcome]:
    """Run every check concurrently; one that takes longer than ``timeout`` seconds is down."""

    async def one(check: DependencyCheck) -> CheckOutcome:
        try:
            return await asyncio.wait_for(asyncio.to_thread(_timed, check), timeout)
        except TimeoutError:
            return CheckOutcome(check.name, False, timeout * 1000, f"no answer in {timeout:g}s")

    return list(await asyncio.gather(*(one(c) for c in checks)))

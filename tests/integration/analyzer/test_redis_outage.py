"""Fault tests: the Redis that caches the analyzer's results is SIGKILLed (then started again),
or stops answering (SIGSTOP).

Results never depend on the cache: while Redis is gone they are computed from Postgres and
answered 200 within a couple of seconds, ``/readyz`` names Redis, the app logs one warning (no
traceback per request), and once Redis is back the same app caches again without a restart."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from splitlab.platform.settings import Settings
from splitlab.platform.storage.redis_keys import results_key
from splitlab_analyzer.app import create_app
from splitlab_analyzer.consumer.rows import RawRecord, build_batch
from splitlab_analyzer.consumer.sink import PostgresSink
from splitlab_analyzer.results.cache import RETRY_SECONDS
from tests.integration.analyzer.conftest import (
    ADMIN,
    define_metrics,
    insert_experiment,
    wait_until,
)
from tests.integration.analyzer.simulation import experiment_row, simulate
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

SLOW = 2.0
"""No request may take longer than this while Redis is gone (seconds)."""
CACHE_LOGGER = "splitlab_analyzer.results.cache"


@pytest.fixture
def experiment(engine: Engine) -> str:
    """A running experiment with 600 exposed units and their events in Postgres."""
    key = f"redis-outage-{uuid.uuid4().hex[:8]}"
    insert_experiment(engine, experiment_row(key))
    sim = simulate(key, n=600, seed=3)
    records = [RawRecord(e.topic, 0, i, e.key(), e.to_bytes()) for i, e in enumerate(sim.events)]
    PostgresSink(engine).write(build_batch(records, {}).rows)
    return key


@pytest.fixture
def own_settings(analyzer_settings: Settings, private_redis: RedisServer) -> Settings:
    # Each Redis call gives up after 1 s (2 s by default), as does each /readyz check.
    return analyzer_settings.model_copy(
        update={"redis_url": private_redis.url, "health_timeout_seconds": 1.0}
    )


@pytest.fixture
def cache(private_redis: RedisServer) -> Iterator[redis.Redis]:
    """A client of the private Redis, to look at what the analyzer cached."""
    client = redis.Redis.from_url(private_redis.url, decode_responses=True, socket_timeout=5)
    yield client
    client.close()


class Timed:
    """The app's answers, each with how long it took."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.seconds: list[float] = []

    def __call__(self, verb: str, url: str, **params: Any) -> Response:
        started = time.perf_counter()
        response = self.client.request(verb, url, params=params, headers=ADMIN)
        self.seconds.append(time.perf_counter() - started)
        return response


def results_url(key: str) -> str:
    return f"/experiments/{key}/results"


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (paths and both values), for an assertion's message."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(k), b.get(k), f"{path}.{k}")]  # fmt: skip
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]  # fmt: skip
    if isinstance(a, float) and isinstance(b, float):
        # Postgres may aggregate in another order between two reads (a fresh database's plan
        # changes once autovacuum has analysed the tables), which moves the last bits of a sum.
        same = math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
        return [] if same else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def changed_numbers(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Where the statistics differ, [] when they are the same (``sample`` also holds rates that
    move with the clock)."""
    return differences(
        (a["metrics"], a["srm"], a["sample"]["units"]),
        (b["metrics"], b["srm"], b["sample"]["units"]),
    )


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, logger: str) -> list[str]:
        return [r.getMessage() for r in self.records if r.name == logger]

    def tracebacks(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.exc_info]


@contextlib.contextmanager
def recorded_logs() -> Iterator[Recorder]:
    """What every logger logs in the block. (The app's logging setup replaces the root
    logger's handlers, pytest's caplog among them: enter this after ``create_app``.)"""
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    try:
        yield recorder
    finally:
        logging.getLogger().removeHandler(recorder)


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """Redis stops answering (its connections stay open) until the block ends."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def test_killed_redis_results_are_computed_without_it_then_cached_again_without_a_restart(
    own_settings: Settings, experiment: str, private_redis: RedisServer, cache: redis.Redis
) -> None:
    key = experiment
    cached_name = results_key(key, "auto", False)
    with TestClient(create_app(own_settings)) as client, recorded_logs() as logs:
        define_metrics(client)
        call = Timed(client)
        first = call("GET", results_url(key))
        assert first.status_code == 200, first.text
        assert cache.exists(cached_name)
        assert call("GET", results_url(key)).json() == first.json()  # from the cache

        private_redis.kill()
        call.seconds.clear()
        down = [call("GET", results_url(key)) for _ in range(5)]
        sequential = call("GET", results_url(key), sequential="true")
        refreshed = call("POST", f"/experiments/{key}/refresh")
        ready = call("GET", "/readyz")
        assert [r.status_code for r in [*down, sequential, refreshed]] == [200] * 7
        assert max(call.seconds) < SLOW, call.seconds
        for answer in down:  # computed anew from Postgres each time: same numbers
            assert answer.json()["computed_at"] != first.json()["computed_at"]
            assert not changed_numbers(answer.json(), first.json())
        assert sequential.json()["sequential"] is True
        assert ready.status_code == 503
        assert ready.json()["down"] == ["redis"]
        # One warning for the outage, not one (with a traceback) per request.
        assert logs.messages(CACHE_LOGGER) == [
            "results cache unavailable; computing results without it"
        ]
        assert logs.tracebacks() == []

        private_redis.start()  # same port, empty (no persistence)
        # The same app caches again once its retry period is over.
        wait_until(
            lambda: (
                call("GET", results_url(key)).status_code == 200 and bool(cache.exists(cached_name))
            ),
            RETRY_SECONDS + 5,
            "results to be cached again",
        )
        stored = call("GET", results_url(key)).json()
        assert call("GET", results_url(key)).json() == stored  # served from the cache again
        assert not changed_numbers(stored, first.json())
        assert call("GET", "/readyz").status_code == 200
        assert logs.messages(CACHE_LOGGER)[1:] == ["results cache available again"]
        assert max(call.seconds) < SLOW, call.seconds


def test_a_redis_that_stops_answering_slows_at_most_one_request_per_retry_period(
    own_settings: Settings, experiment: str, private_redis: RedisServer, cache: redis.Redis
) -> None:
    key = experiment
    with TestClient(create_app(own_settings)) as client, recorded_logs() as logs:
        define_metrics(client)
        call = Timed(client)
        assert call("GET", results_url(key)).status_code == 200
        statuses = []
        with frozen(private_redis):
            call.seconds.clear()
            started = time.monotonic()
            while time.monotonic() - started < RETRY_SECONDS * 1.5:
                statuses.append(call("GET", results_url(key), method="none").status_code)
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            answered = list(call.seconds)
            ready = call("GET", "/readyz")
        assert set(statuses) == {200}
        assert max(answered) < SLOW, answered
        assert len(statuses) >= 10
        # Only the request that finds Redis silent, then one per retry period, waits for the
        # client's timeout (1 s); every other request leaves Redis alone.
        slow = [s for s in answered if s > 0.9]
        assert 1 <= len(slow) <= elapsed // RETRY_SECONDS + 1, answered
        assert ready.status_code == 503
        assert ready.json()["down"] == ["redis"]
        assert logs.messages(CACHE_LOGGER) == [
            "results cache unavailable; computing results without it"
        ]
        assert logs.tracebacks() == []

        # Answering again: the next call after the retry period stores results once more.
        wait_until(
            lambda: (
                call("GET", results_url(key), method="none").status_code == 200
                and bool(cache.exists(results_key(key, "none", False)))
            ),
            RETRY_SECONDS + 5,
            "results to be cached again",
        )
        assert logs.messages(CACHE_LOGGER)[1:] == ["results cache available again"]
        assert call("GET", "/readyz").status_code == 200

"""Fault tests: the router's Redis, then its Postgres, is SIGKILLed under traffic.

Redis (sticky store): /predict keeps answering 200 with the variants the units had (hashing
agrees with their records on a fresh experiment), the fallback counter moves, /readyz names
Redis, and once Redis is back the same app writes sticky records again. (PredictResponse has no
``degraded`` flag: a caller cannot tell from an answer that its record was not read or stored;
the counter and /readyz are how an operator sees it.)

Postgres (experiments and model registry): /predict answers from the cached experiment and the
loaded models through several failed refreshes, /outcomes still takes events, admin calls fail
at once with a 503 naming Postgres, the failed refreshes are one-line warnings (no traceback),
/readyz names Postgres, and once it is back the same app registers models and picks up new
experiments again."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine

from splitlab.platform.settings import Settings
from splitlab.platform.storage.redis_keys import sticky_key
from splitlab_router.app import create_app
from tests.integration.router.conftest import (
    ADMIN,
    Setup,
    insert_experiment,
    register,
    train_models,
    wait_for_experiment,
)
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.waiting import timed, wait_until

pytestmark = pytest.mark.integration

X = {"x1": 0.1, "x2": 0.2}
UNITS = [f"so-{i}" for i in range(40)]
REFRESH_SECONDS = 0.4


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def redis_fallbacks() -> float:
    return sum(
        sample("splitlab_assignment_redis_fallbacks_total", {"operation": op})
        for op in ("read", "write", "skipped")
    )


def ab_variants(setup: Setup) -> list[dict[str, Any]]:
    return [
        {"key": "control", "weight": 0.5, "model": f"{setup.names['a']}:1"},
        {"key": "treatment", "weight": 0.5, "model": f"{setup.names['b']}:1"},
    ]


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def own_engine(private_postgres: PostgresServer) -> Iterator[Engine]:
    engine = create_engine(private_postgres.url, pool_pre_ping=True)  # outlives the crash
    yield engine
    engine.dispose()


def test_predict_survives_a_redis_crash_and_sticky_writes_come_back(
    router_settings: Settings, engine: Engine, ab: Setup, private_redis: RedisServer
) -> None:
    own = router_settings.model_copy(
        update={"redis_url": private_redis.url, "sticky_breaker_seconds": 0.5}
    )
    store = redis.Redis.from_url(private_redis.url, decode_responses=True)
    statuses: Counter[int] = Counter()
    train_models(own)
    with TestClient(create_app(own), raise_server_exceptions=False) as client:

        def predict(unit: str) -> dict[str, Any]:
            body = {"unit_id": unit, "experiment_key": ab.key, "features": X}
            response, elapsed = timed(lambda: client.post("/predict", json=body))
            statuses[response.status_code] += 1
            assert response.status_code == 200, response.text
            assert elapsed < 1.0, f"/predict took {elapsed:.2f}s with Redis down"
            answer: dict[str, Any] = response.json()
            assert answer["in_experiment"]
            assert not answer["fallback"]
            return answer

        register(client, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
        register(client, ab.names["b"], "1", flavor="sklearn", artifact="b.joblib")
        insert_experiment(engine, ab.key, ab_variants(ab))  # fresh: records agree with hashing
        wait_for_experiment(client, ab.key, X)
        before = {unit: predict(unit)["variant"] for unit in UNITS}
        assert set(before.values()) == {"control", "treatment"}
        wait_until(
            lambda: all(store.hget(sticky_key(u), ab.key) == f"{before[u]}|0" for u in UNITS),
            5,
            "the sticky records of the healthy answers",
        )
        assert client.get("/readyz").status_code == 200

        assert not any(predict(unit)["degraded"] for unit in UNITS)
        private_redis.kill()
        killed = time.monotonic()
        fallbacks_at_kill = redis_fallbacks()
        down: list[tuple[float, dict[str, Any]]] = []
        for _ in range(5):  # through several breaker periods' worth of calls
            answers = {unit: predict(unit) for unit in UNITS}
            assert {unit: a["variant"] for unit, a in answers.items()} == before
            down.extend((time.monotonic() - killed, a) for a in answers.values())
        # Answers before the first failed round trip cannot know (a fresh experiment's records
        # are written behind the answer); from the first failure on, every answer says its
        # record was neither read nor stored.
        flagged = next((i for i, (_, a) in enumerate(down) if a["degraded"]), None)
        assert flagged is not None, "no answer was flagged degraded while Redis was dead"
        assert down[flagged][0] < 1.0, f"first degraded answer {down[flagged][0]:.2f}s after"
        assert all(a["degraded"] for _, a in down[flagged:])
        assert redis_fallbacks() - fallbacks_at_kill >= 1, "no Redis fallback was counted"
        assert "splitlab_assignment_redis_fallbacks_total" in client.get("/metrics").text
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["redis"]

        private_redis.start()  # same port, empty (no persistence)
        wait_until(lambda: client.get("/readyz").status_code == 200, 10, "/readyz to recover")

        def recorded(unit: str) -> bool:
            answer = predict(unit)
            return store.hget(sticky_key(unit), ab.key) == f"{answer['variant']}|0"

        # Within a breaker period or two a call reaches Redis again and records are written.
        wait_until(lambda: recorded(f"after-{uuid.uuid4().hex[:6]}"), 10, "records again")
        settled = redis_fallbacks()
        recovered = {unit: predict(unit) for unit in UNITS}
        assert {unit: a["variant"] for unit, a in recovered.items()} == before
        assert not any(a["degraded"] for a in recovered.values())
        wait_until(
            lambda: all(store.hget(sticky_key(u), ab.key) == f"{before[u]}|0" for u in UNITS),
            5,
            "the units' records to be written again",
        )
        assert redis_fallbacks() == settled, "answers still fell back after Redis came back"
    assert set(statuses) == {200}


def test_predict_survives_a_postgres_crash_and_admin_calls_come_back(
    router_settings: Settings,
    ab: Setup,
    private_postgres: PostgresServer,
    own_engine: Engine,
) -> None:
    own = router_settings.model_copy(
        update={
            "database_url": private_postgres.url,
            "experiment_cache_refresh_seconds": REFRESH_SECONDS,
            "router_model_refresh_seconds": REFRESH_SECONDS,
        }
    )
    statuses: Counter[int] = Counter()
    train_models(own)
    recorder = Recorder()
    with TestClient(create_app(own), raise_server_exceptions=False) as client:
        logging.getLogger().addHandler(recorder)  # after the app's logging setup
        try:

            def predict(unit: str, key: str = ab.key) -> dict[str, Any]:
                body = {"unit_id": unit, "experiment_key": key, "features": X}
                response = client.post("/predict", json=body)
                statuses[response.status_code] += 1
                assert response.status_code == 200, response.text
                answer: dict[str, Any] = response.json()
                return answer

            def outcome(unit: str) -> None:
                body = {"unit_id": unit, "outcome_type": "conversion", "value": 1.0}
                response = client.post("/outcomes", json=body)
                statuses[response.status_code] += 1
                assert response.status_code == 202, response.text

            register(client, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
            register(client, ab.names["b"], "1", flavor="sklearn", artifact="b.joblib")
            insert_experiment(own_engine, ab.key, ab_variants(ab))
            wait_for_experiment(client, ab.key, X)
            before = {unit: predict(unit) for unit in UNITS}
            assert {a["variant"] for a in before.values()} == {"control", "treatment"}
            assert client.get("/readyz").status_code == 200

            private_postgres.kill()
            failures_at_kill = sample("splitlab_router_registry_refresh_failures_total")
            logged_at_kill = len(recorder.records)

            # /predict (cached experiment, loaded models) and /outcomes through failed refreshes.
            deadline = time.monotonic() + 4 * REFRESH_SECONDS
            rounds = 0
            while time.monotonic() < deadline or rounds < 2:
                for unit in UNITS:
                    answer = predict(unit)
                    expected = before[unit]
                    assert answer["variant"] == expected["variant"]
                    assert answer["model_name"] == expected["model_name"]
                    assert answer["in_experiment"]
                    assert not answer["fallback"]
                outcome(UNITS[rounds % len(UNITS)])
                rounds += 1
            failed = sample("splitlab_router_registry_refresh_failures_total") - failures_at_kill
            assert failed >= 2, "the refresh never ran"

            # Admin calls fail fast with a 503 naming Postgres: reads and writes alike.
            for call in (
                lambda: client.post(
                    "/models",
                    json={
                        "name": ab.names["a"],
                        "version": "2",
                        "flavor": "sklearn",
                        "artifact": "a.skops",
                        "input_schema": [{"name": "x1"}, {"name": "x2"}],
                    },
                    headers=ADMIN,
                ),
                lambda: client.get("/models", headers=ADMIN),
                lambda: client.get(f"/models/{ab.names['a']}/1", headers=ADMIN),
            ):
                response, elapsed = timed(call)
                statuses[response.status_code] += 1
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert error["code"] == "dependency_unavailable"
                assert "postgres" in error["message"].lower()
                assert elapsed < 2.0, f"took {elapsed:.1f}s to report Postgres down"

            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["down"] == ["postgres"]

            outage = recorder.records[logged_at_kill:]
            refreshes = [r for r in outage if r.name == "splitlab_router.app"]
            assert len(refreshes) >= 2, [r.getMessage() for r in outage]
            assert all(r.levelno == logging.WARNING for r in refreshes)
            assert "postgres" in refreshes[0].getMessage().lower()
            tracebacks = [r for r in outage if r.exc_info]
            assert not tracebacks, [f"{r.name}: {r.getMessage()}" for r in tracebacks]

            private_postgres.start()  # same port and data, after crash recovery
            wait_until(lambda: client.get("/readyz").status_code == 200, 10, "/readyz to recover")

            created = register(client, ab.names["a"], "2", flavor="sklearn", artifact="a.skops")
            assert created["loaded"] is True
            listed = client.get("/models", headers=ADMIN)
            assert listed.status_code == 200, listed.text
            assert len(listed.json()["models"]) == 3
            # A new experiment reaches this app through its periodic refresh again.
            later = f"{ab.key}-later"
            insert_experiment(own_engine, later, ab_variants(ab))
            wait_until(
                lambda: (
                    client.post(
                        "/predict", json={"unit_id": "u", "experiment_key": later, "features": X}
                    ).status_code
                    == 200
                ),
                10 * REFRESH_SECONDS,
                "the refresh to load the new experiment",
            )
            assert {unit: predict(unit)["variant"] for unit in UNITS} == {
                unit: a["variant"] for unit, a in before.items()
            }
        finally:
            logging.getLogger().removeHandler(recorder)
    assert set(statuses) == {200, 202, 503}

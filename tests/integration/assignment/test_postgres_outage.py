"""Fault test: the assignment service's Postgres is SIGKILLed under a running experiment.

While it is down, /assign keeps answering from the experiment cache (200, the same variants,
through several failed cache refreshes), admin calls fail at once with a 503 that names
Postgres, and /readyz reports it down. Once it is back, the same service (never restarted)
takes writes again, and its periodic refresh picks up what another replica changed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from splitlab.platform.settings import Settings
from splitlab_assignment.app import create_app
from tests.integration.assignment.conftest import experiment_body
from tests.support.postgres_server import PostgresServer
from tests.support.waiting import timed, wait_until

pytestmark = pytest.mark.integration

REFRESH_SECONDS = 0.4
UNITS = [f"pg-{i}" for i in range(40)]


def refresh_failures() -> float:
    return REGISTRY.get_sample_value("splitlab_experiment_cache_refresh_failures_total") or 0.0


def assert_postgres_unavailable(response: Any, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert "postgres" in error["message"].lower()
    assert "Traceback" not in response.text
    assert elapsed < 2.0, f"took {elapsed:.1f}s to report Postgres down"


def test_assign_survives_a_postgres_crash_and_writes_come_back(
    service_settings: Settings,
    admin: dict[str, str],
    new_key: Callable[[], str],
    private_postgres: PostgresServer,
) -> None:
    own = service_settings.model_copy(
        update={
            "database_url": private_postgres.url,
            "experiment_cache_refresh_seconds": REFRESH_SECONDS,
        }
    )
    key, later = new_key(), new_key()
    statuses: Counter[int] = Counter()
    # Server errors come back as responses (a 500 included), as a real client would see them.
    with TestClient(create_app(own), raise_server_exceptions=False) as client:

        def assign(unit: str, experiment: str = key) -> dict[str, Any]:
            response = client.post("/assign", json={"unit_id": unit, "experiment_key": experiment})
            statuses[response.status_code] += 1
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        created = client.post("/experiments", json=experiment_body(key), headers=admin)
        assert created.status_code == 201, created.text
        assert client.post(f"/experiments/{key}/start", headers=admin).status_code == 200
        before = {unit: assign(unit)["variant"] for unit in UNITS}
        assert set(before.values()) == {"control", "treatment"}
        assert client.get("/readyz").status_code == 200

        private_postgres.kill()
        failures_at_kill = refresh_failures()

        # /assign answers from the cache through several failed refreshes.
        deadline = time.monotonic() + 4 * REFRESH_SECONDS
        rounds = 0
        while time.monotonic() < deadline or rounds < 2:
            answers = {unit: assign(unit) for unit in UNITS}
            assert {u: a["variant"] for u, a in answers.items()} == before
            assert all(a["in_experiment"] for a in answers.values())
            rounds += 1
        assert refresh_failures() - failures_at_kill >= 2, "the cache refresh never ran"

        # Admin calls fail fast with a 503 naming Postgres: reads and writes alike.
        response, elapsed = timed(
            lambda: client.post("/experiments", json=experiment_body(later), headers=admin)
        )
        assert_postgres_unavailable(response, elapsed)
        response, elapsed = timed(lambda: client.post(f"/experiments/{key}/pause", headers=admin))
        assert_postgres_unavailable(response, elapsed)
        response, elapsed = timed(lambda: client.get("/experiments", headers=admin))
        assert_postgres_unavailable(response, elapsed)
        assert {unit: assign(unit)["variant"] for unit in UNITS} == before  # nothing paused

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["postgres"]
        assert ready.json()["dependencies"]["postgres"]["error"]

        private_postgres.start()  # same port and data, after crash recovery
        wait_until(lambda: client.get("/readyz").status_code == 200, 10, "/readyz to recover")

        created = client.post("/experiments", json=experiment_body(later), headers=admin)
        assert created.status_code == 201, created.text
        # Another replica starts it; this one learns of it through its periodic refresh.
        with TestClient(create_app(own), raise_server_exceptions=False) as replica:
            started = replica.post(f"/experiments/{later}/start", headers=admin)
            assert started.status_code == 200, started.text
        wait_until(
            lambda: assign("pg-0", later)["in_experiment"], 10 * REFRESH_SECONDS, "the refresh"
        )
        paused = client.post(f"/experiments/{key}/pause", headers=admin)
        assert paused.status_code == 200, paused.text
        assert not any(assign(unit)["in_experiment"] for unit in UNITS)
    assert set(statuses) == {200}

"""Acceptance: events through Kafka into Postgres, the real worker and beat; the scheduled
training runs and the analyzer's results switch to CUPAC naming the new version; a unit exposed
after a fit gets a prediction at the next scheduled run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app as create_analyzer
from tests.integration.analyzer.conftest import (
    consumer_thread,
    event_topics,  # noqa: F401 (a fixture)
    insert_experiment,
    produce,
)
from tests.integration.trainer.conftest import ADMIN, in_use, predictions
from tests.integration.trainer.data import T0, Scenario, new_scenario
from tests.support.celery_processes import CeleryProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def analyzer_settings(trainer_settings: Settings) -> Settings:
    return trainer_settings.model_copy(
        update={
            "analyzer_consumer_group": f"trainer-test-{uuid.uuid4().hex[:8]}",
            "analyzer_consumer_metrics_port": 0,
            "analyzer_batch_size": 2000,
            "analyzer_batch_wait_ms": 200,
            "analyzer_refresh_interval_seconds": 0.0,
            "analyzer_rollup_catch_up_seconds": 0.0,
            "analyzer_results_ttl_seconds": 0.01,
        }
    )


@pytest.fixture
def analyzer(analyzer_settings: Settings, redis_client: Any) -> Iterator[TestClient]:
    with TestClient(create_analyzer(analyzer_settings)) as client:
        yield client


def send(analyzer: TestClient, bootstrap: str, topics: dict[str, str], s: Scenario) -> None:
    for start in range(0, len(s.features), 20_000):
        chunk = s.features[start : start + 20_000]
        response = analyzer.post("/unit-features", json={"features": chunk}, headers=ADMIN)
        assert response.status_code == 200, response.text
    produce(bootstrap, topics, [*s.exposures, *s.outcomes])
    s.features.clear()
    s.exposures.clear()
    s.outcomes.clear()


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def test_scheduled_trainings_switch_results_to_cupac_and_cover_new_units(
    analyzer: TestClient,
    analyzer_settings: Settings,
    engine: Engine,
    event_topics: dict[str, str],  # noqa: F811
    beat: CeleryProcess,
    worker: CeleryProcess,
) -> None:
    bootstrap = analyzer_settings.kafka_bootstrap_servers
    scenario = new_scenario()
    created = analyzer.post("/metrics", json=scenario.metric_definition(), headers=ADMIN)
    assert created.status_code == 201, created.text
    scenario.add_history(600, seed=1, cutoff=T0 - timedelta(days=7))
    scenario.add_units(800, seed=2, effect=1.0)
    insert_experiment(engine, scenario.experiment_row())
    key, metric = scenario.key, scenario.metric
    outcomes = len(scenario.outcomes)

    with consumer_thread(analyzer_settings, event_topics):
        send(analyzer, bootstrap, event_topics, scenario)
        wait_until(
            lambda: count(engine, "SELECT count(*) FROM outcomes WHERE outcome_type = :t",
                          t=scenario.outcome_type) == outcomes
            and count(engine, "SELECT count(*) FROM experiment_units WHERE experiment_key = :k",
                      k=key) == 800,
            120, "the events in Postgres",
        )  # fmt: skip

        # Caught before the first training finishes (the first trainings take seconds).
        before = analyzer.get(f"/experiments/{key}/results", params={"method": "cuped"}).json()
        # Beat finds the experiment due; the worker trains both kinds and switches.
        wait_until(lambda: in_use(engine, key, metric) is not None, 180, "a model in use")
        first = in_use(engine, key, metric)
        assert first is not None
        body = analyzer.get(f"/experiments/{key}/results", params={"method": "auto"}).json()
        assert body["metrics"][metric]["method"] == "cupac", body["metrics"][metric]
        named = body["cupac_models"][metric]
        assert named["model_id"] == first["id"]
        assert named["kind"] == first["kind"]
        assert named["kind"] in ("in_experiment", "pre_experiment")
        assert 0 <= named["age_seconds"] < 600
        assert named["stale"] is False
        cuped = analyzer.get(f"/experiments/{key}/results", params={"method": "cuped"}).json()
        # The prediction is CUPAC's column, not one more CUPED covariate.
        for field in ("effect", "se", "ci_lower", "ci_upper", "p_value"):
            assert cuped["metrics"][metric]["comparisons"]["treatment"][field] == pytest.approx(
                before["metrics"][metric]["comparisons"]["treatment"][field], rel=1e-9
            ), field
        comparison = body["metrics"][metric]["comparisons"]["treatment"]
        baseline = cuped["metrics"][metric]["comparisons"]["treatment"]
        assert (comparison["ci_upper"] - comparison["ci_lower"]) < 0.75 * (
            baseline["ci_upper"] - baseline["ci_lower"]
        )
        kinds = count(
            engine,
            "SELECT count(DISTINCT kind) FROM trained_models WHERE experiment_key = :k "
            "AND status = 'done'",
            k=key,
        )
        assert kinds == 2

        # Units exposed after the fit: no prediction yet, one at the next scheduled run.
        late = scenario.add_units(300, seed=3, start=T0 + timedelta(days=3), effect=1.0)
        send(analyzer, bootstrap, event_topics, scenario)
        wait_until(
            lambda: count(engine, "SELECT count(*) FROM experiment_units WHERE experiment_key = :k",
                          k=key) == 1100,
            120, "the late units in Postgres",
        )  # fmt: skip
        wait_until(
            lambda: set(late) <= set(predictions(engine, key, metric)), 180, "late units predicted"
        )
        current = in_use(engine, key, metric)
        assert current is not None
        stored = predictions(engine, key, metric)
        assert len(stored) == 1100
        assert {m for _, m in stored.values()} == {current["id"]}
        again = analyzer.get(f"/experiments/{key}/results", params={"method": "auto"}).json()
        assert again["cupac_models"][metric]["model_id"] == current["id"]
        assert again["sample"]["total_units"] == 1100

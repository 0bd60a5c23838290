"""Entities through the trainer's API: each experiment's model spec and its frequency per
model kind decide what beat queues (the planner, with a recording sender instead of Celery)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from splitlab.platform.settings import Settings
from splitlab_trainer.app import create_app as create_trainer
from splitlab_trainer.resources import build_resources
from tests.integration.trainer.conftest import ADMIN
from tests.integration.trainer.data import new_scenario, store_definitions, store_directly

pytestmark = pytest.mark.integration


@pytest.fixture
def api(trainer_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_trainer(trainer_settings)) as client:
        yield client


def test_frequency_per_entity_and_model_kind(
    api: TestClient, trainer_settings: Settings, engine: Engine
) -> None:
    scenario = new_scenario()
    scenario.add_units(250, seed=8)
    store_definitions(engine, scenario)
    store_directly(engine, scenario)
    body = {
        "experiments": [scenario.key],
        "features": [],
        "families": ["linear"],
        "in_experiment_every_seconds": 60,
        "pre_experiment_every_seconds": 86400,
        "history_days": 3,
    }
    assert api.put("/entities/checkout", json=body).status_code == 401
    put = api.put("/entities/checkout", json=body, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert api.get("/entities/checkout").json()["in_experiment_every_seconds"] == 60
    assert api.get("/entities/nope").status_code == 404
    bad = api.put("/entities/x", json={**body, "families": ["forest"]}, headers=ADMIN)
    assert bad.status_code == 422

    planner = build_resources(trainer_settings, engine).planner
    sent: list[dict[str, Any]] = []

    def send(kwargs: dict[str, Any]) -> str:
        sent.append(kwargs)
        return f"task-{len(sent)}"

    now = datetime.now(UTC)
    first = planner.enqueue_due(send, now)
    mine = [q for q in first["queued"] if q["experiment_key"] == scenario.key]
    assert mine == [
        {"experiment_key": scenario.key, "metric": scenario.metric,
         "kinds": ["in_experiment", "pre_experiment"]}
    ]  # fmt: skip
    rows = api.get("/models", params={"experiment_key": scenario.key}).json()["models"]
    assert {(r["kind"], r["entity"], r["schedule_seconds"], r["status"]) for r in rows} == {
        ("in_experiment", "checkout", 60.0, "queued"),
        ("pre_experiment", "checkout", 86400.0, "queued"),
    }
    # While queued, nothing more is queued for the pair.
    assert not [q for q in planner.enqueue_due(send, now)["queued"]
                if q["experiment_key"] == scenario.key]  # fmt: skip

    # The trainings ran (as the worker would), then units arrived.
    trainings = build_resources(trainer_settings, engine).trainings
    trainings.run_many([r["id"] for r in rows])
    more = new_scenario()
    more.key = scenario.key
    more.add_units(30, seed=9)
    store_directly(engine, more)
    # Two minutes later only the in-experiment model is due (its entity's 60 s); the
    # pre-experiment model waits for its day.
    later = planner.enqueue_due(send, datetime.now(UTC) + timedelta(minutes=2))
    mine = [q for q in later["queued"] if q["experiment_key"] == scenario.key]
    assert mine == [
        {"experiment_key": scenario.key, "metric": scenario.metric, "kinds": ["in_experiment"]}
    ]
    with engine.connect() as connection:
        family = connection.execute(
            text("SELECT family FROM trained_models WHERE experiment_key = :k "
                 "AND kind = 'in_experiment' AND status = 'done'"),
            {"k": scenario.key},
        ).scalar_one()  # fmt: skip
    assert family == "linear"  # the entity's only family

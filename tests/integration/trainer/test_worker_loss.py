"""Reliability with a real prefork worker: a training whose worker process is SIGKILLed leaves
the previous version in use and runs again to completion; a training past its time limit
fails with the reason in the catalogue. Also the trainer API over the real catalogue."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from splitlab.platform.settings import Settings
from splitlab_trainer.app import create_app as create_trainer
from tests.integration.trainer.conftest import ADMIN, in_use, predictions
from tests.integration.trainer.data import new_scenario, store_definitions, store_directly
from tests.support.celery_processes import CeleryProcess, start_worker, wait_for_pool
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def api(trainer_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_trainer(trainer_settings)) as client:
        yield client


def model(api: TestClient, model_id: int) -> dict[str, Any]:
    response = api.get(f"/models/{model_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def finished(api: TestClient, ids: list[int]) -> bool:
    return all(model(api, i)["status"] in ("done", "failed") for i in ids)


def test_sigkill_mid_training_keeps_the_previous_version_and_the_task_runs_again(
    api: TestClient, engine: Engine, worker: CeleryProcess
) -> None:
    scenario = new_scenario()
    scenario.add_units(30_000, seed=5)
    store_definitions(engine, scenario)
    store_directly(engine, scenario)
    key, metric = scenario.key, scenario.metric

    assert api.post("/train", json={"experiment_key": key}).status_code == 401
    queued = api.post("/train", json={"experiment_key": key}, headers=ADMIN)
    assert queued.status_code == 202, queued.text
    first_ids = queued.json()["model_ids"]
    assert [model(api, i)["status"] for i in first_ids] != []
    wait_until(lambda: finished(api, first_ids), 300, "the first training")
    first = in_use(engine, key, metric)
    assert first is not None, [model(api, i) for i in first_ids]
    kept = predictions(engine, key, metric)
    assert len(kept) == 30_000

    again = api.post("/train", json={"experiment_key": key, "metric": metric}, headers=ADMIN)
    second_ids = again.json()["model_ids"]
    wait_until(
        lambda: (
            model(api, second_ids[0])["status"] == "running"
            and model(api, second_ids[0])["progress"] >= 10
        ),
        120,
        "the second training to be fitting",
    )
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)

    # The killed training published nothing: the first version is in use, unchanged.
    assert in_use(engine, key, metric) == first
    assert predictions(engine, key, metric) == kept
    assert {model(api, i)["status"] for i in second_ids} <= {"running", "queued"}

    # The worker's parent requeued the task; a new pool process runs it to the end.
    wait_until(lambda: finished(api, second_ids), 300, "the re-delivered training")
    rows = [model(api, i) for i in second_ids]
    assert all(r["status"] == "done" for r in rows), rows
    assert all(r["attempts"] == 2 for r in rows), rows
    current = in_use(engine, key, metric)
    assert current is not None
    assert current["id"] in second_ids
    stored = predictions(engine, key, metric)
    assert set(stored) == set(kept)
    assert {m for _, m in stored.values()} == {current["id"]}

    listed = api.get("/models", params={"experiment_key": key, "in_use": True}).json()
    assert [m["id"] for m in listed["models"]] == [current["id"]]
    assert api.get("/models/999999999").status_code == 404
    metrics = api.get("/metrics").text
    assert 'splitlab_trainer_trainings{status="done"}' in metrics
    assert f'splitlab_trainer_model_age_seconds{{experiment="{key}"' in metrics


def test_a_training_past_its_time_limit_fails_with_the_reason(
    trainer_settings: Settings, engine: Engine, tmp_path: Path, processes: Any
) -> None:
    limited = trainer_settings.model_copy(
        update={
            "trainer_queue": f"splitlab.trainer.test-{uuid.uuid4().hex[:10]}",
            "trainer_soft_time_limit_seconds": 1.0,
            "trainer_time_limit_seconds": 60.0,
        }
    )
    worker = processes(start_worker(limited, tmp_path / "limited.log", "trainer-limited"))
    wait_for_pool(worker)
    scenario = new_scenario()
    scenario.add_units(30_000, seed=6)
    store_definitions(engine, scenario)
    store_directly(engine, scenario)
    with TestClient(create_trainer(limited)) as client:
        queued = client.post("/train", json={"experiment_key": scenario.key}, headers=ADMIN)
        ids = queued.json()["model_ids"]
        wait_until(lambda: finished(client, ids), 120, "the training to stop")
        rows = [model(client, i) for i in ids]
    assert all(r["status"] == "failed" for r in rows), rows
    assert all("SPLITLAB_TRAINER_SOFT_TIME_LIMIT_SECONDS (1 s)" in r["error"] for r in rows)
    assert in_use(engine, scenario.key, scenario.metric) is None
    assert predictions(engine, scenario.key, scenario.metric) == {}

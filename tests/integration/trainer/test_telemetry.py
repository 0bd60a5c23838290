"""The trainer's Prometheus series, read from the catalogue in Postgres at scrape time: what the
alert rules SplitLabCupacModelStale and SplitLabTrainingsFailing and the training panels read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from splitlab_trainer.telemetry import CatalogueCollector
from tests.integration.trainer.data import new_scenario, store_definitions

pytestmark = pytest.mark.integration


def add(engine: Engine, key: str, metric: str, kind: str, status: str, *,
        age_s: float = 60.0, schedule_s: float = 900.0, in_use: bool = False) -> None:  # fmt: skip
    trained = datetime.now(UTC) - timedelta(seconds=age_s)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO trained_models (entity, experiment_key, metric, kind, status, "
                "progress, attempts, params, features, r2_candidates, notes, schedule_seconds, "
                "duration_seconds, in_use, queued_at, trained_at) VALUES ('default', :k, :m, "
                ":kind, :status, 100, 1, '{}', '[]', '{}', '[]', :schedule, 2.5, :in_use, "
                ":at, :trained)"
            ),
            {"k": key, "m": metric, "kind": kind, "status": status, "schedule": schedule_s,
             "in_use": in_use, "at": trained, "trained": trained if status == "done" else None},
        )  # fmt: skip


def series(engine: Engine, name: str, key: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples about experiment ``key``: label values (after experiment) -> value."""
    found = {}
    for family in CatalogueCollector(engine).collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("experiment") == key:
                labels = tuple(v for k, v in sample.labels.items() if k != "experiment")
                found[labels] = sample.value
    return found


def test_failures_in_a_row_count_since_the_newest_done_training(engine: Engine) -> None:
    key = f"tele-{uuid.uuid4().hex[:8]}"
    add(engine, key, "clicks", "in_experiment", "failed")
    add(engine, key, "clicks", "in_experiment", "done", in_use=True)
    add(engine, key, "clicks", "in_experiment", "failed")
    add(engine, key, "clicks", "in_experiment", "failed")
    add(engine, key, "clicks", "in_experiment", "running")  # not finished: not counted
    add(engine, key, "clicks", "pre_experiment", "failed")
    add(engine, key, "clicks", "pre_experiment", "done")  # the newest one succeeded
    add(engine, key, "revenue", "pre_experiment", "failed")  # never succeeded
    add(engine, key, "revenue", "in_experiment", "queued")  # nothing finished: no series
    assert series(engine, "splitlab_trainer_failures_in_a_row", key) == {
        ("clicks", "in_experiment"): 2.0,
        ("clicks", "pre_experiment"): 0.0,
        ("revenue", "pre_experiment"): 1.0,
    }


def test_the_version_in_use_exports_its_age_schedule_and_staleness(engine: Engine) -> None:
    scenario = new_scenario()
    store_definitions(engine, scenario)  # a running experiment
    key = scenario.key
    add(engine, key, "clicks", "pre_experiment", "done", age_s=3000, schedule_s=1200, in_use=True)
    add(engine, key, "revenue", "in_experiment", "done", age_s=600, schedule_s=900, in_use=True)
    add(engine, key, "revenue", "pre_experiment", "done", age_s=30, schedule_s=900)  # not in use
    ages = series(engine, "splitlab_trainer_model_age_seconds", key)
    assert set(ages) == {("clicks", "pre_experiment"), ("revenue", "in_experiment")}
    assert 3000 <= ages[("clicks", "pre_experiment")] < 3100
    assert series(engine, "splitlab_trainer_model_schedule_seconds", key) == {
        ("clicks", "pre_experiment"): 1200.0,
        ("revenue", "in_experiment"): 900.0,
    }
    # Older than twice its schedule while running: stale; the other is within it.
    assert series(engine, "splitlab_trainer_model_stale", key) == {
        ("clicks",): 1.0,
        ("revenue",): 0.0,
    }
    assert series(engine, "splitlab_trainer_training_duration_seconds", key) == {
        ("clicks", "pre_experiment"): 2.5,
        ("revenue", "in_experiment"): 2.5,
        ("revenue", "pre_experiment"): 2.5,
    }

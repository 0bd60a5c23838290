"""Fixtures for the trainer against the real stack: settings with a queue of the test's own
(no other test session's worker can take its tasks), real worker and beat processes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text

from splitlab.platform.settings import Settings
from tests.support.celery_processes import CeleryProcess, start_beat, start_worker, wait_for_pool

ADMIN_KEY = "trainer-test-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def trainer_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "admin_api_key": SecretStr(ADMIN_KEY),
            "trainer_queue": f"splitlab.trainer.test-{uuid.uuid4().hex[:10]}",
            "trainer_schedule_seconds": 1.0,
            "trainer_every_seconds": 4.0,
            "trainer_time_budget_seconds": 120.0,
            # A worker killed outright comes back after this (the test kills a pool child,
            # which the parent requeues at once).
            "trainer_visibility_timeout_seconds": 600.0,
        }
    )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[CeleryProcess], CeleryProcess]]:
    """Register started processes; every one is stopped (by pid) at the end."""
    started: list[CeleryProcess] = []

    def keep(process: CeleryProcess) -> CeleryProcess:
        started.append(process)
        return process

    yield keep
    for process in reversed(started):
        process.stop()


@pytest.fixture
def worker(
    trainer_settings: Settings,
    tmp_path: Path,
    processes: Callable[[CeleryProcess], CeleryProcess],
) -> CeleryProcess:
    process = processes(start_worker(trainer_settings, tmp_path / "worker.log", "trainer-test"))
    wait_for_pool(process)
    return process


@pytest.fixture
def beat(
    trainer_settings: Settings,
    tmp_path: Path,
    processes: Callable[[CeleryProcess], CeleryProcess],
    worker: CeleryProcess,
) -> CeleryProcess:
    return processes(start_beat(trainer_settings, tmp_path / "beat.log", tmp_path / "schedule"))


def in_use(engine: Engine, key: str, metric: str) -> dict[str, object] | None:
    with engine.connect() as connection:
        row = (
            connection.execute(
                text(
                    "SELECT * FROM trained_models WHERE experiment_key = :k AND metric = :m "
                    "AND in_use"
                ),
                {"k": key, "m": metric},
            )
            .mappings()
            .first()
        )
        return None if row is None else dict(row)


def predictions(engine: Engine, key: str, metric: str) -> dict[str, tuple[float, int]]:
    """unit -> (prediction, model id) of the stored CUPAC predictions."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT unit_id, prediction, model_id FROM cupac_predictions "
                "WHERE experiment_key = :k AND metric = :m"
            ),
            {"k": key, "m": metric},
        )
        return {str(u): (float(p), int(m)) for u, p, m in rows}

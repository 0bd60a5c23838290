"""infra/services.sh, which `make up` and `make down` use: real processes, started once,
stopped by pid."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from splitlab.platform.settings import Settings
from splitlab_trainer.celery_app import create_celery
from tests.support.kafka_broker import free_port
from tests.support.stack import REPO

SERVICES = ("assignment", "router", "analyzer", "trainer")
PROCESSES = (*SERVICES, "analyzer-consumer", "trainer-worker", "trainer-beat")


def run_script(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "infra" / "services.sh"), action],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def pids(state: Path) -> dict[str, int]:
    return {p: int((state / "run" / f"{p}.pid").read_text()) for p in PROCESSES}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def environment(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_STATE_DIR=str(tmp_path / "state"),
        SPLITLAB_DATABASE_URL=settings.database_url,
        SPLITLAB_REDIS_URL=settings.redis_url,
        SPLITLAB_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        SPLITLAB_CELERY_BROKER_URL=settings.celery_broker_url,
        SPLITLAB_CELERY_RESULT_BACKEND=settings.celery_result_backend,
        SPLITLAB_ACCESS_LOG="false",
        # Its own consumer group and no metrics port: never steal the dev consumer's partitions.
        SPLITLAB_ANALYZER_CONSUMER_GROUP=f"processes-test-{uuid.uuid4().hex[:8]}",
        SPLITLAB_ANALYZER_CONSUMER_METRICS_PORT="0",
    )
    for name in SERVICES:
        env[f"SPLITLAB_{name.upper()}_URL"] = f"http://127.0.0.1:{free_port()}"
    yield env
    run_script(env, "down")


def test_up_is_idempotent_and_down_stops_every_process_by_pid(
    environment: dict[str, str], settings: Settings
) -> None:
    state = Path(environment["SPLITLAB_STATE_DIR"])
    first = run_script(environment, "up")
    assert first.returncode == 0, first.stderr
    started = pids(state)
    for name in SERVICES:
        response = httpx.get(f"{environment[f'SPLITLAB_{name.upper()}_URL']}/readyz", timeout=10)
        assert response.status_code == 200, (name, response.text)

    second = run_script(environment, "up")
    assert second.returncode == 0, second.stderr
    assert pids(state) == started, "a second `up` must reuse the running processes"
    assert second.stderr.count("already running") == len(PROCESSES)

    # The worker that `up` started executes tasks in a prefork child of its own.
    celery = create_celery(settings)
    token = uuid.uuid4().hex
    result = celery.send_task("splitlab.trainer.probe", args=[token]).get(timeout=60)
    assert result["token"] == token
    assert result["pid"] != started["trainer-worker"]

    down = run_script(environment, "down")
    assert down.returncode == 0, down.stderr
    assert not any(alive(pid) for pid in started.values())
    assert not list((state / "run").glob("*.pid"))


def test_urls_prints_the_ports_the_services_were_given_not_the_defaults(tmp_path: Path) -> None:
    # `make up` ends with these lines: an owner who moved a port in .env must read the new one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_STATE_DIR=str(tmp_path),
        SPLITLAB_ROUTER_URL="http://127.0.0.1:18102",
        SPLITLAB_STACK_PROMETHEUS_PORT="19190",
    )
    printed = run_script(env, "urls")
    assert printed.returncode == 0, printed.stderr
    assert "router      http://127.0.0.1:18102/docs" in printed.stdout
    assert "prometheus  http://127.0.0.1:19190" in printed.stdout
    assert "8002" not in printed.stdout

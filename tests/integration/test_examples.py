"""examples/ runs as its README says: the marked block's commands, in order, against real
assignment, router and analyzer processes (a database of this test's own), ending with the
experiment started, and /predict answering from the uploaded models (not 503)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.platform.settings import Settings
from splitlab.platform.storage.migrate import upgrade
from tests.support.kafka_broker import free_port
from tests.support.stack import REPO, StackEndpoints
from tests.support.waiting import wait_until

ADMIN_KEY = "examples-admin-key-0123456789"
SERVICES = ("assignment", "router", "analyzer")
MARK = "<!-- examples:run -->"


def readme_commands() -> list[str]:
    """The lines of the sh block right after the README's mark."""
    readme = (REPO / "examples" / "README.md").read_text(encoding="utf-8")
    block = readme.split(MARK, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture
def own_database(stack: StackEndpoints) -> Iterator[str]:
    """A fresh, migrated database: the examples' metric names are common ones."""
    name = f"splitlab_examples_{uuid.uuid4().hex[:8]}"
    admin = create_engine(stack.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(stack.database_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def services(settings: Settings, own_database: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The three services as uvicorn processes on free ports; the settings a CLI user has."""
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_DATABASE_URL=own_database,
        SPLITLAB_REDIS_URL=settings.redis_url,
        SPLITLAB_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        SPLITLAB_STATE_DIR=str(tmp_path / "state"),
        SPLITLAB_ADMIN_API_KEY=ADMIN_KEY,
        SPLITLAB_ACCESS_LOG="false",
        SPLITLAB_EXPERIMENT_CACHE_REFRESH_SECONDS="0.5",
        SPLITLAB_ROUTER_MODEL_REFRESH_SECONDS="0.5",
        SPLITLAB_ANALYZER_REFRESH_INTERVAL_SECONDS="0",
        SPLITLAB_ANALYZER_ROLLUP_CATCH_UP_SECONDS="0",
        **{f"SPLITLAB_{name.upper()}_URL": url for name, url in urls.items()},
    )
    with ExitStack() as stack:
        for name, url in urls.items():
            log = (tmp_path / f"{name}.log").open("wb")
            stack.callback(log.close)
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", f"splitlab_{name}.app:create_app",
                 "--factory", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
                 "--log-level", "warning"],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            stack.callback(_stop, process)
        for name, url in urls.items():
            wait_until(lambda url=url: _ready(url), 60, f"the {name} at {url}")  # type: ignore[misc]
        yield env


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def test_the_examples_run_as_the_readme_says(
    services: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    runner = CliRunner()
    commands = readme_commands()
    assert commands[-1] == "splitlab experiments start ranker-v3"
    for command in commands:
        args = shlex.split(command)
        if args[0] == "splitlab":
            result = runner.invoke(build_app(), args[1:], env=services)
            assert result.exit_code == 0, (command, result.output)
        else:
            assert args[0] == ".venv/bin/python", command
            done = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True,
                                  check=False, cwd=REPO)  # fmt: skip
            assert done.returncode == 0, (command, done.stderr)

    assignment = services["SPLITLAB_ASSIGNMENT_URL"]
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    experiment = httpx.get(f"{assignment}/experiments/ranker-v3", headers=admin).json()
    assert experiment["status"] == "running"
    body = {"unit_id": "user-1", "experiment_key": "ranker-v3",
            "features": {"price": 19.9, "position": 3},
            "attributes": {"country": "US", "app_version": "2.4.1"}}  # fmt: skip
    router = services["SPLITLAB_ROUTER_URL"]
    deadline = time.monotonic() + 15
    while True:  # the router's experiment cache catches up within its refresh interval
        answer = httpx.post(f"{router}/predict", json=body, timeout=5)
        if answer.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_name"] == "ranker"
    assert answer.json()["fallback"] is False

"""The console in a real browser: Debian's chromium driven by Selenium (chromium-driver),
headless, against running processes of this checkout (assignment and analyzer under uvicorn,
the trainer's Celery worker) on the test session's own database and Redis databases."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.kafka_broker import free_port
from tests.support.stack import REPO, StackEndpoints

ADMIN_KEY = "browser-test-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SNAPSHOT_SECONDS = 2.0


@dataclass(frozen=True)
class Services:
    assignment: str
    analyzer: str
    state: Path
    database_url: str


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def services(
    stack: StackEndpoints, migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    state = tmp_path_factory.mktemp("console-state")
    redis_base = stack.redis_url.rsplit("/", 1)[0]
    ports = {"assignment": free_port(), "analyzer": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_ENVIRONMENT="test",
        SPLITLAB_DATABASE_URL=migrated_database,
        SPLITLAB_REDIS_URL=redis_base + "/10",
        SPLITLAB_KAFKA_BOOTSTRAP_SERVERS=stack.kafka_bootstrap_servers,
        # Redis databases of their own: no other worker takes the console's tasks.
        SPLITLAB_CELERY_BROKER_URL=redis_base + "/11",
        SPLITLAB_CELERY_RESULT_BACKEND=redis_base + "/12",
        SPLITLAB_STATE_DIR=str(state),
        SPLITLAB_ADMIN_API_KEY=ADMIN_KEY,
        SPLITLAB_ASSIGNMENT_URL=f"http://127.0.0.1:{ports['assignment']}",
        SPLITLAB_ANALYZER_URL=f"http://127.0.0.1:{ports['analyzer']}",
        SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS=str(SNAPSHOT_SECONDS),
        SPLITLAB_ANALYZER_REFRESH_INTERVAL_SECONDS="0",
        SPLITLAB_ANALYZER_GUARDRAIL_INTERVAL_SECONDS="0",
        SPLITLAB_ANALYZER_ROLLUP_CATCH_UP_SECONDS="0",
        SPLITLAB_ACCESS_LOG="false",
        SPLITLAB_LOG_FORMAT="text",
    )
    import redis

    for db in (11, 12):
        redis.Redis.from_url(f"{redis_base}/{db}").flushdb()
    bin_ = REPO / ".venv" / "bin"
    logs = state / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, port in ports.items():
            log = logs / f"{name}.log"
            process = _start([str(bin_ / "uvicorn"), f"splitlab_{name}.app:create_app",
                              "--factory", "--host", "127.0.0.1", "--port", str(port),
                              "--log-level", "warning"], env, log)  # fmt: skip
            processes.append(process)
            _ready(f"http://127.0.0.1:{port}", process, log)
        worker = _start([str(bin_ / "celery"), "-A", "splitlab_trainer.worker", "worker",
                         "-P", "prefork", "-c", "1", "-n", f"console-test-{os.getpid()}@%h",
                         "--loglevel", "INFO"], env, logs / "worker.log")  # fmt: skip
        processes.append(worker)
        yield Services(
            assignment=env["SPLITLAB_ASSIGNMENT_URL"],
            analyzer=env["SPLITLAB_ANALYZER_URL"],
            state=state,
            database_url=migrated_database,
        )
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()

"""Real trainer processes for tests: a prefork Celery worker and beat, as `make up` runs them,
started as subprocesses with the test's settings and stopped (or killed) by process id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from splitlab.platform.settings import Settings
from tests.support.stack import REPO

CELERY = str(Path(sys.executable).parent / "celery")


def environment(settings: Settings) -> dict[str, str]:
    """The process environment that gives a subprocess ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if name.endswith("api_key"):
            secret = getattr(settings, name)
            value = secret.get_secret_value()
        # Lists and mappings are read back as JSON (pydantic-settings' rule for complex fields).
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"SPLITLAB_{name.upper()}"] = text
    env["SPLITLAB_LOG_FORMAT"] = "text"
    # Boosting's OpenMP threads spin against the other processes of a busy 2-core machine
    # (a 1 s fit took 70 s at load 11); one thread keeps the tests' trainings predictable.
    env["OMP_NUM_THREADS"] = "1"
    return env


class CeleryProcess:
    """``celery -A splitlab_trainer.worker <args>`` in its own process group."""

    def __init__(self, settings: Settings, args: list[str], log: Path) -> None:
        self.settings = settings
        self.args = args
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [CELERY, "-A", "splitlab_trainer.worker", *self.args],
            cwd=REPO, env=environment(self.settings), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        handle.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        """Process ids of the worker's pool processes (prefork children)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_worker(settings: Settings, log: Path, name: str) -> CeleryProcess:
    worker = CeleryProcess(
        settings,
        ["worker", "-P", "prefork", "-c", "1", "-n", f"{name}@%h", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle"],
        log,
    )  # fmt: skip
    worker.start()
    return worker


def start_beat(settings: Settings, log: Path, schedule: Path) -> CeleryProcess:
    beat = CeleryProcess(settings, ["beat", "--loglevel", "INFO", "--schedule", str(schedule)], log)
    beat.start()
    return beat


def wait_for_pool(worker: CeleryProcess, timeout: float = 60.0) -> None:
    """Until the worker has forked its pool process (it is ready to take tasks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process is not None
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.output()[-3000:]}")
        if worker.children() and "ready." in worker.output():
            return
        time.sleep(0.1)
    raise AssertionError(f"the worker did not start:\n{worker.output()[-3000:]}")

"""Schemathesis over the four services' OpenAPI documents: every check, a bounded budget, and
no 5xx or undocumented status may come out.

The four apps run here, each behind a real uvicorn (keep-alive connections, as a client sees
them), against a database of this module's own (created, migrated and dropped here), so the
writes the fuzzer makes (it creates, starts and archives experiments with the admin key) touch
nothing else. The router and the assignment service get a publisher that serializes each event
and drops it: no fuzzed event reaches the stack's Kafka topics. Keys are configured, so the
documented security is real (``ignored_auth`` checks it) and the fuzzer sends them per scheme.

Budget: ``MAX_EXAMPLES`` per operation and phase (coverage, fuzzing), one worker; the figure and
its run time are in docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app as create_analyzer
from splitlab_assignment.app import create_app as create_assignment
from splitlab_router.app import DiscardingPublisher
from splitlab_router.app import create_app as create_router
from splitlab_trainer.app import create_app as create_trainer
from tests.support.databases import own_database
from tests.support.served import free_port, served
from tests.support.stack import StackEndpoints

MAX_EXAMPLES = int(os.environ.get("SPLITLAB_FUZZ_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("SPLITLAB_FUZZ_SEED", "13"))
ADMIN_KEY = "fuzz-admin-key-0123456789"
CALLER_KEY = "fuzz-caller-key-0123456789"
READ_KEY = "fuzz-read-key-0123456789"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SCHEMA_CANNOT_SAY = (
    "POST /experiments",
    "PATCH /experiments/{key}",
    "POST /models",
    "POST /outcomes",
    "POST /metrics",
    "PATCH /metric-definitions/{name}",
    "POST /analyses/synthetic-control",
)
"""Operations with a rule no JSON schema states (see ``fuzz_config``)."""


class SerializingPublisher(DiscardingPublisher):
    """Serializes each event as the real publisher would, then drops it."""

    def publish(self, event: Any) -> None:
        event.to_bytes()


@pytest.fixture(scope="module")
def fuzz_database(stack: StackEndpoints) -> Iterator[str]:
    """A database of this module's own, migrated to head, dropped at the end."""
    with own_database(stack.database_url, "splitlab_fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def services(
    stack: StackEndpoints, fuzz_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    ports = {name: free_port() for name in ("assignment", "router", "analyzer", "trainer")}
    redis_base = stack.redis_url.rsplit("/", 1)[0]
    settings = Settings(
        environment="test",
        database_url=fuzz_database,
        redis_url=stack.redis_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        celery_broker_url=f"{redis_base}/14",  # as the suite's settings: the trainer's API
        celery_result_backend=f"{redis_base}/13",  # enqueues nothing, it only pings
        state_dir=tmp_path_factory.mktemp("fuzz-state"),
        admin_api_key=SecretStr(ADMIN_KEY),
        assign_api_key=SecretStr(CALLER_KEY),
        read_api_key=SecretStr(READ_KEY),
        assignment_url=f"http://127.0.0.1:{ports['assignment']}",
        analyzer_refresh_interval_seconds=0.0,
        analyzer_rollup_catch_up_seconds=0.0,
        log_format="text",
        log_level="ERROR",
        access_log=False,
        health_interval_seconds=3600,
        _env_file=None,  # type: ignore[call-arg]
    )
    apps = {
        "assignment": create_assignment(
            settings, publisher_factory=lambda _: SerializingPublisher()
        ),
        "router": create_router(settings, publisher_factory=lambda _: SerializingPublisher()),
        "analyzer": create_analyzer(settings),
        "trainer": create_trainer(settings),
    }
    with contextlib.ExitStack() as running:
        yield {name: running.enter_context(served(app, ports[name])) for name, app in apps.items()}


@pytest.fixture(scope="module")
def fuzz_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Schemathesis's configuration: the key of each security scheme the documents declare."""
    path = tmp_path_factory.mktemp("fuzz") / "schemathesis.toml"
    path.write_text(
        f'[auth.openapi.adminKey]\nbearer = "{ADMIN_KEY}"\n\n'
        f'[auth.openapi.callerKey]\nbearer = "{CALLER_KEY}"\n\n'
        f'[auth.openapi.readKey]\nbearer = "{READ_KEY}"\n\n'
        # Rules no JSON schema can state, so a schema-valid request may rightly answer 422:
        # rules across fields of an experiment (weights summing to 1, distinct variant keys,
        # targeting syntax, what a started experiment may change) and of a metric, created or
        # changed (a ratio of two other metrics, a source's outcome_type); a model's artifact
        # must be a loadable file in the model store; an outcome's occurred_at must lie within
        # a window around now; a synthetic-control upload must be a readable panel with the
        # named columns.
        + "".join(
            f'[[operations]]\ninclude-name = "{name}"\n\n'
            "[operations.checks.positive_data_acceptance]\n"
            'expected-statuses = ["2xx", "401", "403", "404", "409", "422"]\n\n'
            for name in SCHEMA_CANNOT_SAY
        )
        # /readyz answers its documented 503 while a dependency is down: no Celery worker runs
        # beside the trainer's API here.
        + '[[operations]]\ninclude-name = "GET /readyz"\n\n'
        "[operations.checks.not_a_server_error]\n"
        'expected-statuses = ["2xx", "3xx", "4xx", "503"]\n'
    )
    return path


@pytest.mark.parametrize("service", ["assignment", "router", "analyzer", "trainer"])
def test_fuzzing_finds_no_server_error_and_no_undocumented_status(
    service: str, services: dict[str, str], fuzz_config: Path, tmp_path: Path
) -> None:
    url = services[service]
    document = httpx.get(f"{url}/openapi.json", timeout=10).json()
    if service != "trainer":  # the trainer's API is its health endpoints only
        assert document["components"]["securitySchemes"]  # the keys are declared
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(fuzz_config),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "too_slow,data_too_large,filter_too_much,large_base_example",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    start = time.monotonic()
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
    )
    elapsed = time.monotonic() - start
    summary = run.stdout[-20_000:]
    print(f"schemathesis on {service}: {elapsed:.1f} s\n{run.stdout[-3_000:]}")  # shown with -rP
    assert run.returncode == 0, f"schemathesis on {service} ({elapsed:.0f} s):\n{summary}"
    assert "Tested:" in run.stdout

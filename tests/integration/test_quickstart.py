"""The README's quickstart runs as written: every ``<!-- quickstart -->`` block, in order, in
one bash, against the services as `make run` starts them (``infra/services.sh``, real
processes), on a database, ports and a consumer group of this test's own.

The blocks run where a user would have them: a folder with the repository's ``infra/`` and
``.venv/`` and a ``.env`` naming the services, with no ``SPLITLAB_*`` variable in the
environment, so the quickstart itself must read its URLs and key from ``.env``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from splitlab.contracts.topics import EVENT_TOPICS
from splitlab.platform.settings import Settings
from tests.support.kafka_broker import free_port
from tests.support.stack import REPO

BLOCK = re.compile(r"<!-- quickstart -->\s*```sh\n(.*?)```", re.DOTALL)
DONE = "::quickstart block done::"
ADMIN_KEY = "quickstart-admin-key-0123456789"
SERVICES = ("assignment", "router", "analyzer")
PROCESSES = (*SERVICES, "analyzer-consumer")
"""What the quickstart calls (not the trainer: it trains no model)."""


def quickstart_blocks() -> list[str]:
    return BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8"))


def start_group_at_the_end(bootstrap: str, group: str) -> None:
    """Commit ``group``'s offsets at the current end of the event topics: the consumer then
    reads this test's events, not the shared broker's history (it would start at the
    earliest offset)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in EVENT_TOPICS.values()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        assert partitions, "the event topics are missing: run `splitlab kafka create-topics`"
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close()


def run_services(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "infra" / "services.sh"), action],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


@pytest.fixture
def services_env(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """`make run`'s processes (those the quickstart calls) on free ports, this session's
    database and a fresh consumer group."""
    group = f"quickstart-test-{uuid.uuid4().hex[:8]}"
    start_group_at_the_end(settings.kafka_bootstrap_servers, group)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_STATE_DIR=str(tmp_path / "state"),
        SPLITLAB_DATABASE_URL=settings.database_url,
        SPLITLAB_REDIS_URL=settings.redis_url,
        SPLITLAB_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        SPLITLAB_CELERY_BROKER_URL=settings.celery_broker_url,
        SPLITLAB_CELERY_RESULT_BACKEND=settings.celery_result_backend,
        SPLITLAB_ADMIN_API_KEY=ADMIN_KEY,
        SPLITLAB_ACCESS_LOG="false",
        SPLITLAB_ANALYZER_CONSUMER_GROUP=group,
        SPLITLAB_ANALYZER_CONSUMER_METRICS_PORT="0",
        SPLITLAB_PROCESSES=" ".join(PROCESSES),
        SPLITLAB_READY_TIMEOUT="240",  # four processes importing at once on a busy machine
    )
    for name in SERVICES:
        env[f"SPLITLAB_{name.upper()}_URL"] = f"http://127.0.0.1:{free_port()}"
    try:
        started = time.monotonic()
        up = run_services(env, "up")
        assert up.returncode == 0, up.stderr
        print(f"services up in {time.monotonic() - started:.1f} s")
        yield env
    finally:
        run_services(env, "down")


def test_the_readme_marks_its_quickstart_blocks() -> None:
    blocks = quickstart_blocks()
    assert len(blocks) == 5
    steps = ("load_dotenv .env", "/metrics", "experiments start", "/assign", "splitlab results")
    for block, step in zip(blocks, steps, strict=True):
        assert step in block


@pytest.mark.timeout(600)
def test_the_readme_quickstart_runs_as_written(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    for name in ("infra", ".venv"):
        (workdir / name).symlink_to(REPO / name)
    (workdir / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in services_env.items() if k.startswith("SPLITLAB_"))
    )
    blocks = quickstart_blocks()
    script = "set -eo pipefail\n" + "".join(f"{b}\necho '{DONE}' $SECONDS\n" for b in blocks)
    user_env = {k: v for k, v in services_env.items() if not k.startswith("SPLITLAB_")}
    result = subprocess.run(
        ["bash", "-c", script], cwd=workdir, env=user_env,
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    done = result.stdout.count(DONE)
    print("quickstart blocks done at (s):", re.findall(f"{DONE} (\\d+)", result.stdout))
    assert result.returncode == 0, (
        f"quickstart block {done + 1} of {len(blocks)} failed (exit {result.returncode}):\n"
        f"{blocks[min(done, len(blocks) - 1)]}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert done == len(blocks)
    assert "signed_up" in result.stdout, "the results table of the primary metric"
    assert "'treatment': {'action':" in result.stdout, "the decisions from the JSON results"
    report = (workdir / "quickstart.html").read_text(encoding="utf-8")
    assert report.lower().startswith("<!doctype html>")
    assert "<svg" in report

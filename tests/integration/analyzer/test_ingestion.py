"""Ingestion against real Kafka and Postgres: dead letters, two consumers sharing partitions,
a consumer SIGKILLed mid-stream and restarted loses nothing and doubles nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from splitlab.contracts.events import OutcomeEvent
from splitlab.platform.settings import Settings
from tests.integration.analyzer.conftest import (
    consumer_thread,
    produce,
    produce_raw,
    wait_until,
)
from tests.support.stack import REPO

pytestmark = pytest.mark.integration


def outcomes(n: int, prefix: str) -> list[OutcomeEvent]:
    return [
        OutcomeEvent(unit_id=f"{prefix}-{i}", outcome_type=f"ingest-{prefix}", value=float(i))
        for i in range(n)
    ]


def stored(engine: Engine, prefix: str) -> tuple[int, int]:
    """(rows, distinct event ids) of this test's outcomes."""
    with engine.connect() as c:
        row = c.execute(
            text("SELECT count(*), count(DISTINCT event_id) FROM outcomes WHERE outcome_type = :t"),
            {"t": f"ingest-{prefix}"},
        ).one()
    return int(row[0]), int(row[1])


def read_dead_letters(bootstrap: str, topic: str, expected: int) -> list[dict[str, object]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        group_id=f"dlq-{uuid.uuid4().hex[:6]}", consumer_timeout_ms=3000,
    )  # fmt: skip
    letters: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while len(letters) < expected and time.monotonic() < deadline:
        letters.extend(json.loads(m.value) for m in consumer)
    consumer.close()
    return letters


def test_malformed_events_go_to_the_dead_letter_topic_and_the_rest_is_written(
    analyzer_settings: Settings, event_topics: dict[str, str], engine: Engine
) -> None:
    prefix = uuid.uuid4().hex[:8]
    good = outcomes(20, prefix)
    bad_version = json.loads(good[0].to_bytes())
    bad_version.update(schema_version=2, event_id=str(uuid.uuid4()))
    missing = json.loads(good[1].to_bytes())
    missing.pop("unit_id")
    missing["event_id"] = str(uuid.uuid4())
    bootstrap = analyzer_settings.kafka_bootstrap_servers
    with consumer_thread(analyzer_settings, event_topics):
        produce_raw(
            bootstrap,
            event_topics["outcome"],
            [b"{not json", json.dumps(bad_version).encode(), json.dumps(missing).encode()],
        )
        produce(bootstrap, event_topics, good)
        # An exposure-typed payload on the outcome topic is refused too.
        produce_raw(bootstrap, event_topics["prediction"], [good[2].to_bytes()])
        wait_until(lambda: stored(engine, prefix) == (20, 20), 60, "the valid events")
        letters = read_dead_letters(bootstrap, event_topics["dlq"], 4)
    reasons = sorted(str(letter["reason"]) for letter in letters)
    assert len(letters) == 4, reasons
    assert any("Invalid JSON" in r for r in reasons)
    assert any("schema_version" in r for r in reasons)
    assert any("unit_id" in r and "Field required" in r for r in reasons)
    assert any("does not belong on topic" in r for r in reasons)
    for letter in letters:
        assert letter["topic"] in (event_topics["outcome"], event_topics["prediction"])
        assert isinstance(letter["partition"], int)
        assert isinstance(letter["offset"], int)
        assert letter["payload"]


def test_two_consumers_in_one_group_share_the_partitions(
    analyzer_settings: Settings, event_topics: dict[str, str], engine: Engine
) -> None:
    prefix = uuid.uuid4().hex[:8]
    events = outcomes(3000, prefix)
    with (
        consumer_thread(analyzer_settings, event_topics),
        consumer_thread(analyzer_settings, event_topics),
    ):
        # Both members hold partitions once the group has settled.
        wait_until(lambda: _shared(analyzer_settings), 60, "two members sharing partitions")
        assignments = _assignments(analyzer_settings)
        produce(analyzer_settings.kafka_bootstrap_servers, event_topics, events)
        wait_until(lambda: stored(engine, prefix) == (3000, 3000), 60, "every event")
    assert len(assignments) == 2
    owned = [set(a) for a in assignments]
    assert not (owned[0] & owned[1])
    assert len(owned[0] | owned[1]) == 9


def _describe(settings: Settings) -> list[dict[str, Any]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        groups = admin.describe_groups([settings.analyzer_consumer_group])
    finally:
        admin.close()
    return list(groups[settings.analyzer_consumer_group]["members"])


def _shared(settings: Settings) -> bool:
    owned = _assignments(settings)
    return len(owned) == 2 and all(owned)


def _assignments(settings: Settings) -> list[list[tuple[str, int]]]:
    return [
        [
            (a["topic"], p)
            for a in (member["member_assignment"] or {}).get("assigned_partitions", [])
            for p in a["partitions"]
        ]
        for member in _describe(settings)
    ]


def test_a_consumer_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
    analyzer_settings: Settings, event_topics: dict[str, str], engine: Engine
) -> None:
    prefix = uuid.uuid4().hex[:8]
    events = outcomes(20_000, prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    env.update(
        SPLITLAB_DATABASE_URL=analyzer_settings.database_url,
        SPLITLAB_KAFKA_BOOTSTRAP_SERVERS=analyzer_settings.kafka_bootstrap_servers,
        SPLITLAB_ANALYZER_CONSUMER_GROUP=analyzer_settings.analyzer_consumer_group,
        SPLITLAB_ANALYZER_CONSUMER_METRICS_PORT="0",
        SPLITLAB_ANALYZER_BATCH_SIZE="500",
        SPLITLAB_LOG_FORMAT="text",
    )
    script = (
        "import sys, threading, signal\n"
        "from splitlab.platform.settings import load_settings\n"
        "from splitlab_analyzer.consumer.main import run\n"
        "topics = dict(zip(('exposure', 'prediction', 'outcome'), sys.argv[1:4]))\n"
        "stop = threading.Event()\n"
        "signal.signal(signal.SIGTERM, lambda *a: stop.set())\n"
        "run(load_settings(_env_file=None), stop, topics=topics, dead_letter_topic=sys.argv[4],"
        " serve_metrics=False)\n"
    )
    args = [sys.executable, "-c", script, event_topics["exposure"], event_topics["prediction"],
            event_topics["outcome"], event_topics["dlq"]]  # fmt: skip
    produce(analyzer_settings.kafka_bootstrap_servers, event_topics, events)
    first = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stored(engine, prefix)[0] >= 2000, 60, "a few batches")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    partial = stored(engine, prefix)[0]
    assert partial < 20_000, "killed too late to prove anything"
    second = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stored(engine, prefix)[0] >= 20_000, 90, "every event")
        time.sleep(1.0)
        assert stored(engine, prefix) == (20_000, 20_000)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        if second.poll() is None:
            second.kill()

"""Fixtures for the router against the real stack: two tiny scikit-learn models trained here,
saved to the test's model store, registered, and an A/B experiment (plus a shadow) naming them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import redis
import skops.io
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sqlalchemy import Engine, text

from splitlab.contracts.topics import EXPOSURES, OUTCOMES, PREDICTIONS
from splitlab.platform.settings import Settings
from splitlab_router.app import create_app

ADMIN_KEY = "router-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
FEATURES = [{"name": "x1", "type": "float"}, {"name": "x2", "type": "float"}]


@pytest.fixture
def router_settings(settings: Settings, redis_client: redis.Redis, engine: Engine) -> Settings:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM models"))
    return settings.model_copy(
        update={
            "admin_api_key": SecretStr(ADMIN_KEY),
            "router_model_refresh_seconds": 0.3,
            "experiment_cache_refresh_seconds": 0.3,
        }
    )


def train_models(settings: Settings) -> dict[str, Any]:
    """Two classifiers on the same data, saved with skops (a and shadow) and joblib (b)."""
    import joblib

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    store = settings.model_store_dir
    store.mkdir(parents=True, exist_ok=True)
    a = LogisticRegression().fit(x, y)
    b = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    shadow = LogisticRegression(C=0.01).fit(x, y)
    skops.io.dump(a, store / "a.skops")
    joblib.dump(b, store / "b.joblib")
    skops.io.dump(shadow, store / "shadow.skops")
    return {"a": a, "b": b, "shadow": shadow}


def register(client: TestClient, name: str, version: str, **fields: Any) -> Any:
    body = {"name": name, "version": version, "input_schema": FEATURES, **fields}
    response = client.post("/models", json=body, headers=ADMIN)
    assert response.status_code in (200, 201), response.text
    return response.json()


@dataclass
class Setup:
    key: str
    models: dict[str, Any]
    names: dict[str, str]


def insert_experiment(
    engine: Engine, key: str, variants: list[dict[str, Any]], allocation_epoch: int = 0
) -> None:
    """A running experiment written straight to the registry's table (the assignment service's
    admin API owns it in production; the router only reads it). ``allocation_epoch`` > 0: as if
    its weights had changed since the start, so answers read each unit's sticky record."""
    import json
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiments (key, name, hypothesis, owner, status, variants, "
                "coverage, hash_seed, hash_version, hash_attribute, namespace, targeting, "
                "metrics, alpha, power, mde, planned_sample_size, auto_stop, bucket_version, "
                "min_bucket_version, allocation_epoch, version, created_at, updated_at, "
                "started_at) VALUES "
                "(:key, :key, '', '', 'running', CAST(:variants AS JSONB), 1.0, NULL, 2, 'id', "
                "NULL, NULL, CAST(:metrics AS JSONB), 0.05, 0.8, NULL, NULL, false, 0, 0, "
                ":epoch, 1, :now, :now, :now)"
            ),
            {
                "key": key,
                "variants": json.dumps(variants),
                "metrics": json.dumps({"primary": "conversion"}),
                "epoch": allocation_epoch,
                "now": now,
            },
        )


@pytest.fixture
def ab(router_settings: Settings, engine: Engine) -> Setup:
    models = train_models(router_settings)
    suffix = uuid.uuid4().hex[:8]
    names = {"a": f"clf-a-{suffix}", "b": f"clf-b-{suffix}", "shadow": f"clf-s-{suffix}"}
    return Setup(key=f"ab-{suffix}", models=models, names=names)


@pytest.fixture
def router(router_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(router_settings)) as client:
        yield client


def wait_for_experiment(
    client: TestClient,
    key: str,
    features: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    """Poll until the router's cache holds ``key`` (its periodic refresh)."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = client.post(
            "/predict",
            json={"unit_id": "probe", "experiment_key": key, "features": features},
            headers=headers,
        )
        if probe.status_code != 404:
            return
        time.sleep(0.1)
    raise AssertionError(f"the router never loaded experiment {key}")


_MARKS: dict[Any, int] = {}
"""End offsets of the event topics when the running test began (see ``_mark_topics``)."""


@pytest.fixture(autouse=True)
def _mark_topics(router_settings: Settings) -> Iterator[None]:
    """Where each event topic ended before this test: ``consume`` reads from there, so a topic
    holding millions of older events (benchmarks share the dev broker) costs nothing."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=router_settings.kafka_bootstrap_servers)
    try:
        for topic in (EXPOSURES, PREDICTIONS, OUTCOMES):
            partitions = consumer.partitions_for_topic(topic) or set()
            _MARKS.update(consumer.end_offsets([TopicPartition(topic, p) for p in partitions]))
    finally:
        consumer.close()
    yield
    _MARKS.clear()


def consume(
    bootstrap: str,
    topic: str,
    keep: Callable[[dict[str, Any]], bool],
    wanted: int,
    timeout: float = 30.0,
) -> list[Any]:
    """Messages of ``topic`` written since the test began that ``keep`` accepts, until
    ``wanted`` of them arrived or ``timeout`` seconds passed."""
    import json
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    for tp in partitions:
        if tp in _MARKS:
            consumer.seek(tp, _MARKS[tp])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < wanted:
            for batch in consumer.poll(timeout_ms=500).values():
                found.extend(e for e in (json.loads(m.value) for m in batch) if keep(e))
    finally:
        consumer.close()
    return found

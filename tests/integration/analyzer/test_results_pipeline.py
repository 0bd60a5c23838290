"""Acceptance: events through real Kafka into Postgres give results equal to splitlab.analyze
on the same per-unit data (1e-9 relative), with SRM and guardrail fields; replaying every
event a second time changes nothing."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

import splitlab
from splitlab.core.stats.sequential import DEFAULT_TUNING_N
from splitlab.platform.settings import Settings
from tests.integration.analyzer.conftest import (
    ADMIN,
    consumer_thread,
    define_metrics,
    insert_experiment,
    produce,
    wait_until,
)
from tests.integration.analyzer.simulation import Simulation, experiment_row, simulate

pytestmark = pytest.mark.integration

COVARIATES = {
    "revenue": ["revenue_pre", "spend_30d"],
    "clicks": ["clicks_pre"],
    "converted": [],
    "order_value": ["order_value_pre"],
    "revenue_1d": ["revenue_1d_pre"],
    "latency": [],
}
RATIOS = {"revenue_per_click": ("revenue", "clicks")}
WEIGHTS = {"control": 0.5, "t1": 0.25, "t2": 0.25}


def reference(sim: Simulation, metric: str, method: str, sequential: bool) -> dict[str, Any]:
    """``splitlab.analyze`` on the per-unit frame, for one metric."""
    options: dict[str, Any] = {
        "method": method,
        "alpha": 0.05,
        "weights": WEIGHTS,
        "sequential": sequential,
        "tuning_n": 4000 if sequential else DEFAULT_TUNING_N,
    }
    if metric in RATIOS:
        result = splitlab.analyze(sim.units, metrics=[], ratio_metrics=RATIOS, **options)
    else:
        result = splitlab.analyze(
            sim.units,
            metrics=[metric],
            covariates=COVARIATES[metric],
            lower_is_better=["latency"] if metric == "latency" else [],
            **options,
        )
    return result.to_dict()


def assert_same(expected: Any, got: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert set(expected) == set(got), path
        for k in expected:
            if k not in ("elapsed_s",):
                assert_same(expected[k], got[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert len(expected) == len(got), path
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert expected == got, path


def counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as c:
        return tuple(
            c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("exposures", "outcomes", "predictions")
        )


def test_kafka_to_results_equal_splitlab_analyze_and_replays_change_nothing(
    analyzer: TestClient,
    analyzer_settings: Settings,
    event_topics: dict[str, str],
    engine: Engine,
) -> None:
    key = f"pipe-{uuid.uuid4().hex[:8]}"
    # Experiment B: the same units and outcomes, only metrics that have covariates.
    key_b = f"{key}-b"
    sim = simulate(key, n=1500, seed=11, revenue_effect=8.0)
    b_exposures = [
        e.model_copy(update={"experiment_key": key_b, "event_id": uuid.uuid4()})
        for e in sim.events
        if e.event_type == "exposure"
    ]
    insert_experiment(engine, experiment_row(key))
    b_row = experiment_row(key_b, guardrails=[])
    b_row["metrics"] = {"primary": "revenue", "secondary": ["clicks", "order_value"],
                        "guardrails": []}  # fmt: skip
    insert_experiment(engine, b_row)
    define_metrics(analyzer)
    for start in range(0, len(sim.features), 5000):
        response = analyzer.post(
            "/unit-features", json={"features": sim.features[start : start + 5000]}, headers=ADMIN
        )
        assert response.status_code == 200, response.text

    before = counts(engine)
    events = [*sim.events, *b_exposures]
    bootstrap = analyzer_settings.kafka_bootstrap_servers
    with consumer_thread(analyzer_settings, event_topics):
        produce(bootstrap, event_topics, events)
        wait_until(lambda: sum(counts(engine)) - sum(before) == len(events), 90, "ingestion")

    response = analyzer.get(f"/experiments/{key}/results", params={"method": "none"})
    assert response.status_code == 200, response.text
    body = response.json()
    for metric in [*COVARIATES, *RATIOS]:
        expected = reference(sim, metric, "none", sequential=False)
        assert_same(expected["metrics"][metric], body["metrics"][metric], metric)
        assert_same(expected["srm"], body["srm"], "srm")
    # The true effect is on revenue (t1), none on clicks.
    revenue = body["metrics"]["revenue"]["comparisons"]
    assert revenue["t1"]["ci_lower"] > 0
    assert body["metrics"]["clicks"]["comparisons"]["t1"]["p_value"] > 0.001
    assert body["sample"]["units"] == body["srm"]["observed"]
    assert body["sample"]["total_units"] == 1500
    assert body["srm"]["status"] == "ok"
    assert body["flags"] == {"srm": False, "guardrail_violated": [], "treatment_fallback": [],
                             "excluded_values": 0}  # fmt: skip
    assert {(g["metric"], g["variant"]) for g in body["guardrails"]} == {
        ("latency", "t1"),
        ("latency", "t2"),
    }
    assert all(not g["violated"] for g in body["guardrails"])
    assert set(body["monitoring"]["revenue"]["t1"]) == {
        "always_valid_p_value", "cs_lower", "cs_upper",
    }  # fmt: skip
    assert body["decisions"]["t1"]["action"] in ("ship", "keep_running")

    sequential = analyzer.get(
        f"/experiments/{key}/results", params={"method": "none", "sequential": "true"}
    ).json()
    for metric in ("revenue", "clicks", "revenue_per_click"):
        expected = reference(sim, metric, "none", sequential=True)
        assert_same(expected["metrics"][metric], sequential["metrics"][metric], metric)

    for method in ("regression", "cuped"):
        got = analyzer.get(f"/experiments/{key_b}/results", params={"method": method})
        assert got.status_code == 200, got.text
        for metric in ("revenue", "clicks", "order_value"):
            expected = reference(sim, metric, method, sequential=False)
            assert_same(expected["metrics"][metric], got.json()["metrics"][metric], metric)
    vr = got.json()["metrics"]["revenue"]["variance_reduction"]

    # CUPAC is the trainer's job: the analyzer only enqueues a training (tests/integration/
    # trainer/ run it with a real worker and check the results that follow).
    queued = analyzer.post(f"/experiments/{key_b}/cupac", headers=ADMIN)
    assert queued.status_code == 202, queued.text
    assert queued.json()["experiment_key"] == key_b
    assert queued.json()["task_id"]
    assert analyzer.post("/experiments/no-such-key/cupac", headers=ADMIN).status_code == 404
    assert vr > 0.1

    # Replay: every event a second time changes neither the tables nor the results.
    after_first = counts(engine)
    analyzer_settings = analyzer_settings.model_copy(
        update={"analyzer_consumer_group": analyzer_settings.analyzer_consumer_group + "-replay"}
    )
    with consumer_thread(analyzer_settings, event_topics):
        produce(bootstrap, event_topics, events)
        wait_until(lambda: _group_done(analyzer_settings, event_topics), 90, "replay consumed")
    assert counts(engine) == after_first
    refreshed_response = analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN)
    assert refreshed_response.status_code == 200, refreshed_response.text
    refreshed = refreshed_response.json()
    again = analyzer.get(f"/experiments/{key}/results", params={"method": "none"}).json()
    for metric in [*COVARIATES, *RATIOS]:
        assert_same(body["metrics"][metric], again["metrics"][metric], metric)
    assert refreshed["sample"]["units"] == body["sample"]["units"]
    assert refreshed["metrics"]["revenue"]["method"] in ("cuped", "regression", "none")
    assert not math.isnan(refreshed["srm"]["p_value"])


def _group_done(settings: Settings, topics: dict[str, str]) -> bool:
    """The replay group has committed the end of every partition of the event topics."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.analyzer_consumer_group,
        enable_auto_commit=False,
    )
    try:
        partitions = [
            TopicPartition(topics[k], p) for k in ("exposure", "prediction", "outcome")
            for p in range(3)
        ]  # fmt: skip
        ends = consumer.end_offsets(partitions)
        return all(consumer.committed(tp) == end for tp, end in ends.items())
    finally:
        consumer.close()

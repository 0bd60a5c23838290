"""The router against real Postgres, Redis and Kafka: two registered scikit-learn models in an
A/B experiment, events consumed back one to one, shadows only in events, fallback, validation,
stickiness shared with /assign, the registry API and hot reload."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from splitlab.contracts.topics import EXPOSURES, OUTCOMES, PREDICTIONS
from splitlab.platform.settings import Settings
from splitlab.platform.storage.redis_keys import sticky_key
from tests.integration.router.conftest import (
    ADMIN,
    Setup,
    consume,
    insert_experiment,
    register,
    wait_for_experiment,
)

X = {"x1": 0.3, "x2": -1.2}


def _ab(
    client: TestClient,
    engine: Engine,
    ab: Setup,
    *,
    shadow: bool = True,
    allocation_epoch: int = 0,
) -> None:
    register(client, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
    register(client, ab.names["b"], "1", flavor="sklearn", artifact="b.joblib")
    variants: list[dict[str, Any]] = [
        {"key": "control", "weight": 0.5, "model": f"{ab.names['a']}:1"},
        {"key": "treatment", "weight": 0.5, "model": f"{ab.names['b']}:1"},
    ]
    if shadow:
        register(client, ab.names["shadow"], "1", flavor="sklearn", artifact="shadow.skops")
        variants.append({"key": "candidate", "weight": 0.0, "model": f"{ab.names['shadow']}:1"})
    insert_experiment(engine, ab.key, variants, allocation_epoch)
    wait_for_experiment(client, ab.key, X)


def test_ab_predictions_match_the_models_and_events_match_responses_one_to_one(
    router: TestClient, engine: Engine, ab: Setup, router_settings: Settings
) -> None:
    _ab(router, engine, ab)
    answers = []
    for i in range(120):
        features = {"x1": float(np.sin(i)), "x2": float(np.cos(i))}
        response = router.post(
            "/predict",
            json={"unit_id": f"user-{i}", "experiment_key": ab.key, "features": features},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        model = ab.models["a" if body["variant"] == "control" else "b"]
        row = [[features["x1"], features["x2"]]]
        assert body["prediction"] == int(model.predict(row)[0])
        assert body["probabilities"]["1"] == float(model.predict_proba(row)[0][1])
        expected_name = ab.names["a" if body["variant"] == "control" else "b"]
        assert (body["model_name"], body["model_version"]) == (expected_name, "1")
        assert body["fallback"] is False
        assert body["variant"] != "candidate", "a shadow variant is never returned"
        answers.append((f"user-{i}", body))
    variants = Counter(body["variant"] for _, body in answers)
    assert set(variants) == {"control", "treatment"}

    # The same answer again (hashing: nothing has moved a unit since the start).
    again = router.post(
        "/predict", json={"unit_id": "user-7", "experiment_key": ab.key, "features": X}
    ).json()
    assert again["variant"] == dict(answers)["user-7"]["variant"]

    request_ids = {body["request_id"] for _, body in answers} | {again["request_id"]}
    served = consume(
        router_settings.kafka_bootstrap_servers,
        PREDICTIONS,
        lambda e: e["request_id"] in request_ids,
        2 * len(request_ids),
    )
    primary = [e for e in served if not e["shadow"]]
    shadows = [e for e in served if e["shadow"]]
    assert len(primary) == len(request_ids) == len({e["event_id"] for e in primary})
    by_request = {e["request_id"]: e for e in primary}
    for unit, body in [*answers, ("user-7", again)]:
        event = by_request[body["request_id"]]
        assert event["unit_id"] == unit
        assert (event["variant"], event["model_name"], event["model_version"]) == (
            body["variant"],
            body["model_name"],
            body["model_version"],
        )
        assert event["prediction"] == {
            "value": body["prediction"],
            "probabilities": body["probabilities"],
        }
        assert event["fallback"] is False
        assert event["error"] is None
        assert event["latency_ms"] >= 0
    # Every in-experiment request was copied to the shadow, logged only as an event.
    assert {e["request_id"] for e in shadows} == request_ids
    assert {(e["variant"], e["model_name"]) for e in shadows} == {("candidate", ab.names["shadow"])}
    shadow_model = ab.models["shadow"]
    one = next(e for e in shadows if e["request_id"] == again["request_id"])
    assert one["prediction"]["value"] == int(shadow_model.predict([[0.3, -1.2]])[0])

    exposures = consume(
        router_settings.kafka_bootstrap_servers,
        EXPOSURES,
        lambda e: e["experiment_key"] == ab.key and e["unit_id"] != "probe",
        len(answers) + 1,
    )
    assert len(exposures) == len(answers) + 1
    assert {e["reason"] for e in exposures} == {"hashed"}


def test_sticky_record_is_the_one_assign_reads(
    router: TestClient, engine: Engine, ab: Setup, redis_client: Any
) -> None:
    _ab(router, engine, ab, shadow=False, allocation_epoch=1)  # records rule, as after a change
    body = router.post(
        "/predict", json={"unit_id": "sticky-u", "experiment_key": ab.key, "features": X}
    ).json()
    stored = redis_client.hgetall(sticky_key("sticky-u"))
    assert stored == {ab.key: f"{body['variant']}|0"}
    other = "treatment" if body["variant"] == "control" else "control"
    redis_client.hset(sticky_key("sticky-u"), ab.key, f"{other}|0")
    again = router.post(
        "/predict", json={"unit_id": "sticky-u", "experiment_key": ab.key, "features": X}
    ).json()
    assert again["variant"] == other, "the router honours the sticky store like /assign"


def test_features_are_validated_naming_the_feature(
    router: TestClient, engine: Engine, ab: Setup
) -> None:
    _ab(router, engine, ab, shadow=False)
    missing = router.post(
        "/predict", json={"unit_id": "u", "experiment_key": ab.key, "features": {"x1": 1.0}}
    )
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "features.x2"
    typed = router.post(
        "/predict",
        json={"unit_id": "u", "experiment_key": ab.key, "features": {"x1": "a", "x2": 1}},
    )
    assert typed.status_code == 422
    assert typed.json()["error"]["field"] == "features.x1"
    unknown = router.post(
        "/predict", json={"unit_id": "u", "experiment_key": "nope", "features": X}
    )
    assert unknown.status_code == 404


def test_a_failing_variant_model_falls_back_to_control(
    router: TestClient, engine: Engine, ab: Setup, router_settings: Settings
) -> None:
    register(router, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
    # A remote model whose server does not answer: every call fails.
    register(
        router, ab.names["b"], "remote", flavor="http", url="http://127.0.0.1:9/predict",
        timeout_ms=200,
    )  # fmt: skip
    insert_experiment(
        engine,
        ab.key,
        [
            {"key": "control", "weight": 0.0001, "model": f"{ab.names['a']}:1"},
            {"key": "treatment", "weight": 0.9999, "model": f"{ab.names['b']}:remote"},
        ],
    )
    wait_for_experiment(router, ab.key, X)
    body = router.post(
        "/predict", json={"unit_id": "fb-1", "experiment_key": ab.key, "features": X}
    ).json()
    assert (body["variant"], body["fallback"]) == ("treatment", True)
    assert (body["model_name"], body["model_version"]) == (ab.names["a"], "1")
    assert body["prediction"] == int(ab.models["a"].predict([[0.3, -1.2]])[0])
    events = consume(
        router_settings.kafka_bootstrap_servers,
        PREDICTIONS,
        lambda e: e["request_id"] == body["request_id"],
        1,
    )
    assert len(events) == 1
    assert events[0]["fallback"] is True
    assert "remote" in events[0]["error"]
    metrics = router.get("/metrics").text
    assert f'splitlab_router_fallbacks_total{{experiment="{ab.key}"' in metrics


def test_outcomes_single_and_batch_are_idempotent_by_event_id(
    router: TestClient, router_settings: Settings
) -> None:
    event_id = "6f1c3a56-4d55-4b8e-9d0a-0a2e5b1c9f11"
    one = {"unit_id": "u1", "outcome_type": "click", "value": 1, "event_id": event_id}
    first = router.post("/outcomes", json=one)
    assert first.status_code == 202
    assert first.json() == {"accepted": 1, "event_ids": [event_id]}
    batch = router.post(
        "/outcomes",
        json={"outcomes": [{"unit_id": f"u{i}", "outcome_type": "revenue", "value": i * 1.5,
                            "request_id": f"r{i}"} for i in range(5)]},
    )  # fmt: skip
    assert batch.status_code == 202
    assert batch.json()["accepted"] == 5
    ids = {event_id, *batch.json()["event_ids"]}
    bad = router.post("/outcomes", json={"unit_id": "u", "outcome_type": "x", "value": "many"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "value"
    too_many = router.post(
        "/outcomes",
        json={"outcomes": [{"unit_id": "u", "outcome_type": "x", "value": 1}] * 1001},
    )
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "outcomes"
    broken = router.post(
        "/outcomes", content=b'{"unit_id": "u",', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["error"]["field"] == "body"
    assert broken.json()["error"]["message"].startswith("body: not valid JSON at character 16 (")
    found = consume(
        router_settings.kafka_bootstrap_servers, OUTCOMES, lambda e: e["event_id"] in ids, len(ids)
    )
    assert {e["event_id"] for e in found} == ids
    assert next(e for e in found if e["event_id"] == event_id)["value"] == 1.0


def test_registry_api_and_hot_reload(
    router: TestClient, engine: Engine, ab: Setup, router_settings: Settings
) -> None:
    assert router.post("/models", json={}).status_code == 401
    created = register(router, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
    assert created["ref"] == f"{ab.names['a']}:1"
    assert created["loaded"] is True
    assert len(created["sha256"]) == 64
    same = router.post(
        "/models",
        json={"name": ab.names["a"], "version": "1", "flavor": "sklearn",
              "artifact": "a.skops", "input_schema": [
                  {"name": "x1", "type": "float"}, {"name": "x2", "type": "float"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert same.status_code == 200
    changed = router.post(
        "/models",
        json={"name": ab.names["a"], "version": "1", "flavor": "sklearn",
              "artifact": "b.joblib", "input_schema": [
                  {"name": "x1", "type": "float"}, {"name": "x2", "type": "float"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert changed.status_code == 409
    wrong_width = router.post(
        "/models",
        json={"name": ab.names["a"], "version": "2", "flavor": "sklearn",
              "artifact": "a.skops", "input_schema": [{"name": "x1"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert wrong_width.status_code == 422
    assert wrong_width.json()["error"]["field"] == "input_schema"
    outside = router.post(
        "/models",
        json={"name": "evil", "version": "1", "flavor": "sklearn",
              "artifact": "../../etc/passwd", "input_schema": [{"name": "x1"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert outside.status_code == 422
    assert outside.json()["error"]["field"] == "artifact"
    listed = router.get("/models", headers=ADMIN).json()["models"]
    assert [m["ref"] for m in listed] == [f"{ab.names['a']}:1"]
    shown = router.get(f"/models/{ab.names['a']}/1", headers=ADMIN)
    assert shown.status_code == 200
    assert router.get(f"/models/{ab.names['a']}/9", headers=ADMIN).status_code == 404

    # Hot reload: a version registered elsewhere (another replica: straight into the table)
    # becomes servable here without a restart, and a removed one is forgotten.
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO models (name, version, flavor, artifact, sha256, url, timeout_ms, "
                "input_schema, metadata, created_at) SELECT name, '2', flavor, 'b.joblib', NULL, "
                "url, timeout_ms, input_schema, metadata, created_at FROM models WHERE name = :n"
            ),
            {"n": ab.names["a"]},
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if router.get(f"/models/{ab.names['a']}/2", headers=ADMIN).json()["loaded"]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("version 2 was never loaded")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM models WHERE version = '2'"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f"{ab.names['a']}:2" in router.app.state.catalog:  # type: ignore[attr-defined]
        time.sleep(0.1)
    assert f"{ab.names['a']}:2" not in router.app.state.catalog  # type: ignore[attr-defined]

"""The router's edge against the real stack: ids it could not store are refused rather than
accepted and dead-lettered, outcome values and times are strict, and model-store errors name the
artifact, never the server's folders."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import skops.io
from fastapi.testclient import TestClient

from splitlab.contracts.topics import OUTCOMES
from splitlab.platform.settings import Settings
from splitlab_router.serving import file_sha256
from tests.integration.router.conftest import ADMIN, FEATURES, Setup, consume, register


def test_outcomes_with_nul_are_refused_naming_the_field_and_never_published(
    router: TestClient, router_settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    single = router.post(
        "/outcomes", json={"unit_id": f"{tag}\u0000x", "outcome_type": "click", "value": 1.0}
    )
    assert single.status_code == 422, single.text
    assert single.json()["error"]["field"] == "unit_id"
    batch = router.post(
        "/outcomes",
        json={"outcomes": [
            {"unit_id": f"{tag}-ok", "outcome_type": "click", "value": 1.0},
            {"unit_id": f"{tag}-ok", "outcome_type": "cl\u0000ick", "value": 1.0},
        ]},
    )  # fmt: skip
    assert batch.status_code == 422
    assert batch.json()["error"]["field"] == "outcomes.1.outcome_type"
    published = consume(
        router_settings.kafka_bootstrap_servers,
        OUTCOMES,
        lambda e: str(e["unit_id"]).startswith(tag),
        wanted=1,
        timeout=3.0,
    )
    assert published == []


def test_outcome_values_are_json_numbers_and_times_fit_the_window(router: TestClient) -> None:
    base = {"unit_id": "u-strict", "outcome_type": "revenue"}
    for value in (True, "1.5"):
        refused = router.post("/outcomes", json={**base, "value": value})
        assert refused.status_code == 422, value
        assert refused.json()["error"]["field"] == "value"
    for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        edge = router.post("/outcomes", json={**base, "value": 1.0, "occurred_at": at})
        assert edge.status_code == 422, edge.text
        assert edge.headers["content-type"] == "application/json"
        error = edge.json()["error"]
        assert error["field"] == "occurred_at"
        assert "years 1 to 9999" in error["message"]
    old = (datetime.now(UTC) - timedelta(days=800)).isoformat()
    far = router.post("/outcomes", json={"outcomes": [{**base, "value": 1.0, "occurred_at": old}]})
    assert far.status_code == 422
    error = far.json()["error"]
    assert error["field"] == "outcomes.0.occurred_at"
    assert "more than 365 days from now" in error["message"]
    recent = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    assert (
        router.post("/outcomes", json={**base, "value": 2, "occurred_at": recent}).status_code
        == 202
    )


def test_model_store_errors_name_the_artifact_not_the_server_path(
    router: TestClient, router_settings: Settings
) -> None:
    store = str(router_settings.model_store_dir.resolve())
    for artifact in ("missing-model.skops", "../../etc/passwd"):
        response = router.post(
            "/models",
            json={"name": "m", "version": "1", "flavor": "sklearn", "artifact": artifact,
                  "input_schema": FEATURES},
            headers=ADMIN,
        )  # fmt: skip
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "artifact"
        assert store not in response.text
        assert str(router_settings.state_dir.resolve()) not in response.text
        assert "SPLITLAB_STATE_DIR" in response.json()["error"]["message"]
    (router_settings.model_store_dir / "folder.skops").mkdir(parents=True)
    unloadable = router.post(
        "/models",
        json={"name": "m", "version": "1", "flavor": "sklearn", "artifact": "folder.skops",
              "input_schema": FEATURES},
        headers=ADMIN,
    )  # fmt: skip
    assert unloadable.status_code == 422
    assert store not in unloadable.text


def test_a_resaved_artifact_answers_409_with_the_byte_rule(
    router: TestClient, router_settings: Settings, ab: Setup
) -> None:
    name = ab.names["a"]
    first = register(router, name, "1", flavor="sklearn", artifact="a.skops")
    path = router_settings.model_store_dir / "a.skops"
    deadline = time.monotonic() + 5
    while True:  # the same model saved again: zip entries carry a 2-second clock
        skops.io.dump(ab.models["a"], path)
        if file_sha256(path) != first["sha256"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    again = router.post(
        "/models",
        json={"name": name, "version": "1", "flavor": "sklearn", "artifact": "a.skops",
              "input_schema": FEATURES},
        headers=ADMIN,
    )  # fmt: skip
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["field"] == "artifact"
    assert first["sha256"] in error["message"]
    assert "saving a model again writes different bytes" in error["message"]
    assert "register the new file as a new version" in error["message"]


def test_model_parameters_with_nul_are_a_422_naming_them(router: TestClient) -> None:
    listed = router.get("/models?name=a%00b", headers=ADMIN)
    assert listed.status_code == 422
    assert listed.json()["error"]["field"] == "name"
    shown = router.get("/models/a%00/1", headers=ADMIN)
    assert shown.status_code == 422
    assert shown.json()["error"]["field"] == "name"

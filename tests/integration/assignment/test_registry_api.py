"""The experiment registry over HTTP against real Postgres: auth, validation, lifecycle, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from splitlab.platform.settings import Settings
from splitlab.platform.storage.models import AllocationPeriod
from splitlab_assignment.app import create_app
from tests.integration.assignment.conftest import ADMIN_KEY, experiment_body


def test_changes_require_an_admin_key_and_reads_are_open_without_a_read_key(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    missing = client.post("/experiments", json=experiment_body(new_key()))
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.post(
        "/experiments", json=experiment_body(new_key()), headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 403
    assert client.get("/experiments").status_code == 200  # no read key configured: open
    assert client.get("/experiments", headers=admin).status_code == 200


def test_unset_admin_key_answers_401_saying_how_to_set_it(service_settings: Settings) -> None:
    unset = service_settings.model_copy(update={"admin_api_key": None, "api_keys": {}})
    with TestClient(create_app(unset)) as client:
        response = client.post(
            "/experiments",
            json=experiment_body("no-admin-key"),
            headers={"Authorization": "Bearer anything"},
        )
    assert response.status_code == 401
    assert "SPLITLAB_ADMIN_API_KEY" in response.json()["error"]["message"]


def test_create_read_list_and_duplicate(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    created = client.post("/experiments", json=experiment_body(key), headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "draft"
    assert body["allowed_actions"] == ["start", "stop"]
    assert body["variants"][1] == {
        "key": "treatment",
        "weight": 0.5,
        "model": "ranker:3",
        "description": "",
    }
    assert body["metrics"]["guardrails"] == [{"metric": "latency_p99", "margin": 0.05}]
    assert client.get(f"/experiments/{key}", headers=admin).json() == body
    listed = client.get("/experiments", params={"status": "draft"}, headers=admin).json()
    assert key in [e["key"] for e in listed["experiments"]]
    duplicate = client.post("/experiments", json=experiment_body(key), headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["field"] == "key"
    assert client.get(f"/experiments/{new_key()}", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        (
            {"variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.4}]},
            "variants",
            "sum to 1",
        ),
        ({"variants": [{"key": "a", "weight": 1.0}]}, "variants", "at least 2"),
        (
            {"variants": [{"key": "a", "weight": 0.5}, {"key": "a", "weight": 0.5}]},
            "variants[1].key",
            "duplicate",
        ),
        ({"coverage": 1.5}, "coverage", "less than or equal to 1"),
        ({"coverage": -0.1}, "coverage", "greater than or equal to 0"),
        ({"metrics": {"primary": "Not A Metric!"}}, "metrics.primary", "lower-case identifier"),
        (
            {"metrics": {"primary": "ok", "guardrails": [{"metric": "bad name", "margin": 0.1}]}},
            "metrics.guardrails.0.metric",
            "lower-case identifier",
        ),
        ({"targeting": {"email": {"$regex": "(["}}}, "targeting.email.$regex", "regular"),
        ({"targeting": {"country": {"$inn": ["US"]}}}, "targeting.country.$inn", "unknown"),
        ({"key": "not url safe/"}, "key", "URL-safe characters"),
        ({"namespace": {"id": "ns", "start": 0.5, "end": 0.2}}, "namespace.end", "greater"),
        ({"segment_attributes": ["country", "country"]}, "segment_attributes", "listed twice"),
        ({"segment_attributes": ["$country"]}, "segment_attributes", "without it"),
        ({"segment_attributes": ["device.os"]}, "segment_attributes", "top-level attribute"),
        ({"segment_attributes": [""]}, "segment_attributes.0", "at least 1 character"),
        ({"segment_attributes": [f"a{i}" for i in range(21)]}, "segment_attributes", "20"),
    ],
)
def test_invalid_experiments_are_422_naming_the_field(
    client: TestClient,
    admin: dict[str, str],
    new_key: Callable[[], str],
    overrides: dict[str, object],
    field: str,
    words: str,
) -> None:
    response = client.post(
        "/experiments", json=experiment_body(new_key(), **overrides), headers=admin
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]


def test_lifecycle_change_rules_and_audit_log(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    assert client.post("/experiments", json=experiment_body(key), headers=admin).status_code == 201
    assert client.post(f"/experiments/{key}/pause", headers=admin).status_code == 409
    started = client.post(f"/experiments/{key}/start", headers=admin)
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert started.json()["started_at"] is not None

    ramp = {"variants": [{"key": "control", "weight": 0.2}, {"key": "treatment", "weight": 0.8}]}
    patched = client.patch(f"/experiments/{key}", json=ramp, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["variants"][1]["weight"] == 0.8

    reseed = client.patch(f"/experiments/{key}", json={"hash_seed": "other"}, headers=admin)
    assert reseed.status_code == 422
    assert reseed.json()["error"]["field"] == "hash_seed"
    assert "bump bucket_version" in reseed.json()["error"]["message"]
    bumped = client.patch(
        f"/experiments/{key}", json={"hash_seed": "other", "bucket_version": 1}, headers=admin
    )
    assert bumped.status_code == 200
    assert bumped.json()["bucket_version"] == 1
    forbidden = client.patch(f"/experiments/{key}", json={"status": "stopped"}, headers=admin)
    assert forbidden.status_code == 422
    assert "start|pause|stop|archive" in forbidden.json()["error"]["message"]
    assert (
        client.patch(f"/experiments/{key}", json={"name": None}, headers=admin).status_code == 422
    )

    assert client.post(f"/experiments/{key}/pause", headers=admin).json()["status"] == "paused"
    assert client.post(f"/experiments/{key}/start", headers=admin).json()["status"] == "running"
    assert client.post(f"/experiments/{key}/stop", headers=admin).json()["status"] == "stopped"
    frozen = client.patch(f"/experiments/{key}", json={"coverage": 0.5}, headers=admin)
    assert frozen.status_code == 422
    archived = client.post(f"/experiments/{key}/archive", headers=admin).json()
    assert archived["status"] == "archived"
    assert archived["allowed_actions"] == []
    assert archived["version"] == 8  # create, start, two updates, pause, start, stop, archive

    entries = client.get(f"/experiments/{key}/audit", headers=admin).json()["entries"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions == ["create", "start", "update", "update", "pause", "start", "stop", "archive"]
    assert {e["actor"] for e in entries} == {"alice@example.com"}
    ramp_entry = entries[-3]
    assert ramp_entry["before"]["variants"][1]["weight"] == 0.5
    assert ramp_entry["after"]["variants"][1]["weight"] == 0.8
    assert [c["kind"] for c in ramp_entry["changes"]] == [
        "relies_on_stickiness",
        "relies_on_stickiness",
    ]
    assert entries[-1]["before"] is None


def test_allocation_epoch_counts_only_changes_that_move_recorded_units(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    """While it is 0 ``/assign`` skips the sticky read, so it must grow with every change
    after the start that can make a record differ from hashing, and with nothing else."""
    key = new_key()
    body = {**experiment_body(key), "coverage": 0.5}
    assert client.post("/experiments", json=body, headers=admin).json()["allocation_epoch"] == 0

    def patch(change: dict[str, Any]) -> int:
        response = client.patch(f"/experiments/{key}", json=change, headers=admin)
        assert response.status_code == 200, response.text
        return int(response.json()["allocation_epoch"])

    weights = {"variants": [{"key": "control", "weight": 0.3}, {"key": "treatment", "weight": 0.7}]}
    assert patch(weights) == 0  # a draft has no records yet
    client.post(f"/experiments/{key}/start", headers=admin)
    assert patch({"coverage": 0.8}) == 0  # a ramp-up keeps every assigned unit where it is
    assert patch({"name": "renamed"}) == 0
    reset = {"variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]}
    assert patch(reset) == 1  # weights: only records hold assigned units now
    assert patch({"coverage": 0.4}) == 2  # narrowing
    assert patch({"hash_seed": "other", "bucket_version": 1}) == 3
    assert client.get(f"/experiments/{key}", headers=admin).json()["allocation_epoch"] == 3


def test_allocation_periods_start_with_the_experiment_and_grow_with_every_bucketing_change(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str], engine: Engine
) -> None:
    """Period 0 begins at the (first) start with the split it started with; every change of
    a bucketing setting after it begins the next, stored with its split and what changed."""
    key = new_key()
    body = {**experiment_body(key), "coverage": 0.5}
    assert client.post("/experiments", json=body, headers=admin).json()["allocation_period"] == 0

    def patch(change: dict[str, Any]) -> int:
        response = client.patch(f"/experiments/{key}", json=change, headers=admin)
        assert response.status_code == 200, response.text
        return int(response.json()["allocation_period"])

    split = {"variants": [{"key": "control", "weight": 0.3}, {"key": "treatment", "weight": 0.7}]}
    assert patch(split) == 0  # a draft: no period yet
    assert client.post(f"/experiments/{key}/start", headers=admin).status_code == 200
    ramp = {"variants": [{"key": "control", "weight": 0.2}, {"key": "treatment", "weight": 0.8}]}
    assert patch(ramp) == 1
    assert patch({"name": "renamed"}) == 1  # not a bucketing setting
    assert patch({"coverage": 0.9}) == 2  # a ramp-up changes who lands in a variant
    client.post(f"/experiments/{key}/pause", headers=admin)
    client.post(f"/experiments/{key}/start", headers=admin)  # resuming starts no period
    assert client.get(f"/experiments/{key}", headers=admin).json()["allocation_period"] == 2
    with engine.connect() as connection:
        rows = connection.execute(
            select(AllocationPeriod).where(AllocationPeriod.experiment_key == key)
            .order_by(AllocationPeriod.period)
        ).all()  # fmt: skip
    assert [(r.period, r.weights, r.coverage, r.changes) for r in rows] == [
        (0, {"control": 0.3, "treatment": 0.7}, 0.5, []),
        (1, {"control": 0.2, "treatment": 0.8}, 0.5, ["variants[0].weight", "variants[1].weight"]),
        (2, {"control": 0.2, "treatment": 0.8}, 0.9, ["coverage"]),
    ]
    assert rows[0].started_at < rows[1].started_at < rows[2].started_at


def test_the_audit_actor_is_the_keys_configured_name_not_a_header(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    spoofed = {"Authorization": f"Bearer {ADMIN_KEY}", "X-SplitLab-Actor": "mallory"}
    created = client.post("/experiments", json=experiment_body(key), headers=spoofed)
    assert created.status_code == 201
    client.patch(f"/experiments/{key}", json={"name": "renamed"}, headers=admin)
    entries = client.get(f"/experiments/{key}/audit", headers=admin).json()["entries"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("update", "alice@example.com"),
        ("create", "admin"),
    ]


def test_archive_needs_a_stopped_experiment_and_says_so(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    client.post("/experiments", json=experiment_body(key), headers=admin)
    for status in ("draft", "running"):
        if status == "running":
            client.post(f"/experiments/{key}/start", headers=admin)
        refused = client.post(f"/experiments/{key}/archive", headers=admin)
        assert refused.status_code == 409
        assert (
            "archive needs a stopped experiment: stop it first"
            in refused.json()["error"]["message"]
        )
    assert client.post(f"/experiments/{key}/stop", headers=admin).status_code == 200
    assert client.post(f"/experiments/{key}/archive", headers=admin).json()["status"] == "archived"


def test_a_read_key_guards_reads_and_changes_nothing_with_it(
    service_settings: Settings, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    read_key = "test-read-key-0123456789"
    guarded = service_settings.model_copy(update={"read_api_key": SecretStr(read_key)})
    reader = {"Authorization": f"Bearer {read_key}"}
    key = new_key()
    with TestClient(create_app(guarded)) as client:
        created = client.post("/experiments", json=experiment_body(key), headers=admin)
        assert created.status_code == 201
        for path in ("/experiments", f"/experiments/{key}", f"/experiments/{key}/audit"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=reader).status_code == 200, path
            assert client.get(path, headers=admin).status_code == 200, path
        refused = client.post(f"/experiments/{key}/start", headers=reader)
        assert refused.status_code == 403
        assert "a read key; admin endpoints need an admin key" in refused.json()["error"]["message"]
        assert client.get(f"/experiments/{key}", headers=reader).json()["status"] == "draft"

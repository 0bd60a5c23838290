"""The assignment service's edge against the real stack: text it could not store is refused
naming the field (never accepted and dead-lettered), and `/assign/batch` can be narrowed to
named experiments."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.integration.assignment.conftest import experiment_body


def test_nul_in_any_field_or_parameter_is_a_422_naming_it(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    key = new_key()
    created = client.post(
        "/experiments", json=experiment_body(key, hypothesis="a\u0000b"), headers=admin
    )
    assert created.status_code == 422, created.text
    assert created.json()["error"]["field"] == "hypothesis"
    assert client.post("/experiments", json=experiment_body(key), headers=admin).status_code == 201
    assert client.post(f"/experiments/{key}/start", headers=admin).status_code == 200
    for body, field in (
        ({"unit_id": "u\u0000", "experiment_key": key}, "unit_id"),
        ({"unit_id": "u", "experiment_key": key, "attributes": {"country": "U\u0000S"}},
         "attributes.country"),
        ({"unit_id": "u", "experiment_key": key, "attributes": {"c\u0000": 1}}, "attributes"),
    ):  # fmt: skip
        refused = client.post("/assign", json=body)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["field"] == field
    batch = client.post("/assign/batch", json={"unit_id": "u\u0000"})
    assert batch.status_code == 422
    shown = client.get("/experiments/a%00", headers=admin)
    assert shown.status_code == 422
    assert shown.json()["error"]["field"] == "key"


def test_assign_batch_takes_a_list_of_experiment_keys(
    client: TestClient, admin: dict[str, str], new_key: Callable[[], str]
) -> None:
    first, second = new_key(), new_key()
    for key in (first, second):
        assert (
            client.post("/experiments", json=experiment_body(key), headers=admin).status_code == 201
        )
        assert client.post(f"/experiments/{key}/start", headers=admin).status_code == 200
    everything = client.post("/assign/batch", json={"unit_id": "u-batch"}).json()
    assert {first, second} <= {a["experiment_key"] for a in everything["assignments"]}
    narrowed = client.post(
        "/assign/batch", json={"unit_id": "u-batch-2", "experiment_keys": [second]}
    )
    assert narrowed.status_code == 200, narrowed.text
    assert [a["experiment_key"] for a in narrowed.json()["assignments"]] == [second]
    unknown = client.post(
        "/assign/batch", json={"unit_id": "u", "experiment_keys": [first, "no-such-exp"]}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "experiment_keys"
    empty = client.post("/assign/batch", json={"unit_id": "u", "experiment_keys": []})
    assert empty.status_code == 422

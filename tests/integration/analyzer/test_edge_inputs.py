"""The analyzer's edge against the real stack: `/unit-features` takes the 20,000 values its docs
promise in one call, unit ids COPY must escape are stored as sent, and parameters with NUL are a
422 naming them rather than a 500."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.integration.analyzer.conftest import ADMIN


def test_unit_features_take_twenty_thousand_values_in_one_call(
    analyzer: TestClient, engine: Engine
) -> None:
    name = f"spend_{uuid.uuid4().hex[:8]}"
    values = [
        {"unit_id": f"user-{i}", "name": name, "value": 12.5 + i / 7,
         "observed_at": "2026-01-01T00:00:00Z"}
        for i in range(20_000)
    ]  # fmt: skip
    response = analyzer.post("/unit-features", json={"features": values}, headers=ADMIN)
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {"loaded": 20_000}
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM unit_features WHERE name = :n"), {"n": name}
        ).scalar_one()
    assert stored == 20_000
    too_many = analyzer.post(
        "/unit-features", json={"features": [*values, values[0]]}, headers=ADMIN
    )
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "features"


def test_unit_ids_that_copy_must_escape_are_stored_as_sent(
    analyzer: TestClient, engine: Engine
) -> None:
    name = f"spend_{uuid.uuid4().hex[:8]}"
    units = ["a\rb", "c\nd", "e\tf", "g\\h"]
    response = analyzer.post(
        "/unit-features",
        json={"features": [
            {"unit_id": u, "name": name, "value": 1.0, "observed_at": "2026-01-01T00:00:00Z"}
            for u in units
        ]},
        headers=ADMIN,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT unit_id FROM unit_features WHERE name = :n"), {"n": name}
        ).scalars()
        assert sorted(stored) == sorted(units)


def test_parameters_with_nul_are_a_422_naming_them(analyzer: TestClient) -> None:
    results = analyzer.get("/experiments/a%00/results")
    assert results.status_code == 422, results.text
    assert results.json()["error"]["field"] == "key"
    body = analyzer.post(
        "/unit-features",
        json={"features": [{"unit_id": "u\u0000", "name": "spend", "value": 1.0,
                            "observed_at": "2026-01-01T00:00:00Z"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert body.status_code == 422
    assert body.json()["error"]["field"] == "features.0.unit_id"

"""An experiment's ``segment_attributes`` (issue 20): through the real assignment app
(registry, ``/assign``, exposures) and the analyzer on Postgres.

An owner who sent ``country`` to ``/assign`` could not segment by it: an exposure recorded only
the attributes the targeting reads (the 422 suggested an always-true ``$nin`` rule). Now the
experiment names the attributes its exposures record; one it does not name is not recorded; a
PATCH that adds one records it on later exposures only.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import splitlab
from splitlab.contracts.events import ExposureEvent, OutcomeEvent
from tests.integration.analyzer.conftest import ADMIN, CollectingPublisher, write
from tests.integration.analyzer.test_results_pipeline import assert_same

pytestmark = pytest.mark.integration

METRIC = {"name": "segattr_value", "source": "outcome", "outcome_type": "segattr_value",
          "aggregation": "sum"}  # fmt: skip
WEIGHTS = {"control": 0.5, "treatment": 0.5}
COUNTRIES = ["BR", "DE", "FR", "US"]


def start_experiment(assignment: TestClient, segment_attributes: list[str]) -> str:
    key = f"segattr-{uuid.uuid4().hex[:8]}"
    body = {
        "key": key,
        "name": "segment attributes",
        "variants": [{"key": v, "weight": w} for v, w in WEIGHTS.items()],
        "metrics": {"primary": "segattr_value", "secondary": [], "guardrails": []},
        "segment_attributes": segment_attributes,
    }
    created = assignment.post("/experiments", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["segment_attributes"] == segment_attributes
    assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200
    return key


def assign_http(
    assignment: TestClient, key: str, units: list[str], attributes: list[dict[str, Any]]
) -> None:
    for unit, attrs in zip(units, attributes, strict=True):
        answer = assignment.post(
            "/assign", json={"unit_id": unit, "experiment_key": key, "attributes": attrs}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["in_experiment"], answer.json()


def outcomes_and_frame(
    events: list[ExposureEvent], seed: int
) -> tuple[list[OutcomeEvent], pd.DataFrame]:
    """An outcome per unit after its first exposure (treatment adds 0.4, DE adds 1.0), and the
    per-unit frame with the attributes of that first exposure."""
    rng = np.random.default_rng(seed)
    first: dict[str, ExposureEvent] = {}
    for e in events:
        if e.unit_id not in first or e.occurred_at < first[e.unit_id].occurred_at:
            first[e.unit_id] = e
    out, rows = [], []
    for unit, e in first.items():
        country = e.attributes.get("country")
        y = float(rng.normal(5, 1)) + 0.4 * (e.variant == "treatment") + (country == "DE")
        out.append(OutcomeEvent(unit_id=unit, outcome_type="segattr_value", value=y,
                                occurred_at=e.occurred_at + timedelta(seconds=1)))  # fmt: skip
        rows.append((unit, e.variant, y, country, e.attributes.get("platform")))
    frame = pd.DataFrame(rows, columns=["unit_id", "variant", "segattr_value", "country",
                                        "platform"])  # fmt: skip
    return out, frame.sort_values("unit_id").reset_index(drop=True)


def assert_results_equal_analyze(body: dict[str, Any], frame: pd.DataFrame, segment: str) -> None:
    want = splitlab.analyze(
        frame, metrics=["segattr_value"], method="none", weights=WEIGHTS, segment=segment
    ).to_dict()
    assert_same(want["metrics"]["segattr_value"], body["metrics"]["segattr_value"], "overall")
    got = body["segments"]
    assert list(want["segments"]["segments"]) == list(got["segments"])
    for label, seg in want["segments"]["segments"].items():
        mine = got["segments"][label]
        assert seg["units"] == mine["units"], label
        assert_same(seg["metrics"]["segattr_value"], mine["metrics"]["segattr_value"], label)
    assert_same(want["segments"]["heterogeneity"], got["heterogeneity"], "heterogeneity")


def test_named_attributes_are_recorded_and_segment_results_equal_splitlab_analyze(
    analyzer: TestClient,
    assignment: TestClient,
    exposures: CollectingPublisher,
    engine: Engine,
) -> None:
    """Before: the exposures of an experiment whose targeting reads nothing carried ``{}``, and
    ``segment=country`` was a 422 "attributes that exist: none"."""
    key = start_experiment(assignment, ["country"])
    tag = uuid.uuid4().hex[:6]
    rng = np.random.default_rng(3)
    first = [f"{tag}-a{i}" for i in range(600)]
    countries = rng.choice(COUNTRIES, len(first), p=[0.2, 0.3, 0.2, 0.3])
    assign_http(
        assignment,
        key,
        first,
        [
            {"country": str(c), "email": f"{u}@example.com"}
            for u, c in zip(first, countries, strict=True)
        ],
    )
    assert len(exposures.events) == 600
    assert [e.attributes for e in exposures.events] == [{"country": str(c)} for c in countries]

    # Add platform: exposures from then on record it; the ones before keep what they had.
    patched = assignment.patch(
        f"/experiments/{key}", json={"segment_attributes": ["country", "platform"]}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["segment_attributes"] == ["country", "platform"]
    assert patched.json()["allocation_period"] == 0  # no bucketing setting changed
    later = [f"{tag}-b{i}" for i in range(400)]
    platforms = rng.choice(["ios", "android"], len(later))
    assign_http(
        assignment,
        key,
        [*later, *first[:100]],  # new units, then returning ones
        [
            *({"country": "US", "platform": str(p), "email": "x"} for p in platforms),
            *({"country": "FR", "platform": "web"} for _ in range(100)),
        ],
    )
    after = exposures.events[600:]
    assert [e.attributes for e in after[:400]] == [
        {"country": "US", "platform": str(p)} for p in platforms
    ]
    assert {e.attributes["platform"] for e in after[400:]} == {"web"}
    assert all("platform" not in e.attributes for e in exposures.events[:600])

    outcomes, frame = outcomes_and_frame(exposures.events, seed=3)
    # A returning unit's segment is its first exposure's: no platform, its first country.
    assert frame.platform.notna().sum() == 400
    write(engine, [*exposures.events, *outcomes])
    created = analyzer.post("/metrics", json=METRIC, headers=ADMIN)
    assert created.status_code in (201, 409), created.text
    for segment in ("country", "platform"):
        answer = analyzer.get(
            f"/experiments/{key}/results", params={"method": "none", "segment": segment}
        )
        assert answer.status_code == 200, answer.text
        assert_results_equal_analyze(answer.json(), frame, segment)
        if segment == "platform":  # the units exposed before the PATCH have no platform
            assert answer.json()["segments"]["segments"]["(missing)"]["units"] == {
                v: int(n) for v, n in frame[frame.platform.isna()].variant.value_counts().items()
            }
    unnamed = analyzer.get(f"/experiments/{key}/results", params={"segment": "email"})
    assert unnamed.status_code == 422, unnamed.text
    assert "--segment-attribute email" in unnamed.json()["error"]["message"]

    update = assignment.get(f"/experiments/{key}/audit", headers=ADMIN).json()["entries"][0]
    assert update["action"] == "update"
    assert update["before"]["segment_attributes"] == ["country"]
    assert update["after"]["segment_attributes"] == ["country", "platform"]
    shown = assignment.get(f"/experiments/{key}", headers=ADMIN).json()
    assert shown["segment_attributes"] == ["country", "platform"]


def test_a_stopped_experiment_takes_a_segment_attributes_change_without_a_new_period(
    assignment: TestClient, exposures: CollectingPublisher
) -> None:
    """Not a bucketing setting: no allocation period, no bucketing freeze once stopped."""
    key = start_experiment(assignment, [])
    assert assignment.post(f"/experiments/{key}/stop", headers=ADMIN).status_code == 200
    patched = assignment.patch(
        f"/experiments/{key}", json={"segment_attributes": ["country"]}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["segment_attributes"], patched.json()["allocation_period"]) == (
        ["country"],
        0,
    )
    cleared = assignment.patch(f"/experiments/{key}", json={"segment_attributes": None},
                               headers=ADMIN)  # fmt: skip
    assert cleared.status_code == 422
    assert cleared.json()["error"]["field"] == "segment_attributes"

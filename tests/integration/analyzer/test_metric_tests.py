"""Issue 20, tests per metric definition: a metric names its test in the analyzer, the results
carry it and equal ``splitlab.analyze`` on the same units (1e-9; a seeded bootstrap of integer
values exactly, units in ``unit_id`` order), and a test that does not fit is a 422 naming the
field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import splitlab
from tests.integration.analyzer.conftest import ADMIN, insert_experiment, write
from tests.integration.analyzer.simulation import experiment_row, simulate
from tests.integration.analyzer.test_results_pipeline import WEIGHTS, assert_same

pytestmark = pytest.mark.integration

# metric of the simulation -> (its definition, its test, the quantile of a bootstrap)
DEFINITIONS: dict[str, tuple[str, dict[str, Any], str, float | None]] = {
    "mw": ("revenue", {"outcome_type": "purchase", "aggregation": "sum"}, "mann_whitney", None),
    "boot": ("revenue", {"outcome_type": "purchase", "aggregation": "sum"}, "bootstrap_bca", 0.75),
    "pct": ("clicks", {"outcome_type": "click", "aggregation": "count"},
            "bootstrap_percentile", None),
    "chi": ("converted", {"outcome_type": "purchase", "aggregation": "any"}, "chi2", None),
    "z": ("converted", {"outcome_type": "purchase", "aggregation": "any"}, "z", None),
    "ov": ("order_value", {"outcome_type": "purchase", "aggregation": "mean"},
           "mann_whitney", None),
    "welch": ("revenue", {"outcome_type": "purchase", "aggregation": "sum"}, "welch", None),
}  # fmt: skip


def _define(analyzer: TestClient, suffix: str) -> dict[str, str]:
    """Create the metrics (names unique to this run); metric name -> the simulation's column."""
    columns = {}
    for short, (column, body, test, quantile) in DEFINITIONS.items():
        name = f"{short}_{suffix}"
        payload = {"name": name, "source": "outcome", "pre_period_days": 0, **body, "test": test}
        if quantile is not None:
            payload["quantile"] = quantile
        response = analyzer.post("/metrics", json=payload, headers=ADMIN)
        assert response.status_code == 201, response.text
        assert response.json()["test"] == test
        assert response.json()["quantile"] == quantile
        columns[name] = column
    return columns


def test_results_carry_each_metrics_test_equal_to_splitlab_analyze(
    analyzer: TestClient, engine: Engine
) -> None:
    suffix = uuid.uuid4().hex[:8]
    key = f"tests-{suffix}"
    sim = simulate(key, n=900, seed=5, revenue_effect=3.0)
    columns = _define(analyzer, suffix)
    names = list(columns)
    row = experiment_row(key, guardrails=[])
    row["metrics"] = {"primary": names[0], "secondary": names[1:], "guardrails": []}
    insert_experiment(engine, row)
    write(engine, sim.events)

    response = analyzer.get(f"/experiments/{key}/results", params={"method": "none"})
    assert response.status_code == 200, response.text
    body = response.json()

    frame = sim.units.assign(**{name: sim.units[column] for name, column in columns.items()})
    tests = {f"{s}_{suffix}": d[2] for s, d in DEFINITIONS.items()}
    quantiles = {f"{s}_{suffix}": d[3] for s, d in DEFINITIONS.items() if d[3] is not None}
    expected = splitlab.analyze(
        frame, metrics=names, method="none", weights=WEIGHTS, tests=tests, quantiles=quantiles
    ).to_dict()
    for name in names:
        got, want = body["metrics"][name], expected["metrics"][name]
        assert got["test"] == tests[name]
        assert got["quantile"] == want["quantile"]
        for variant in ("t1", "t2"):
            assert_same(want["comparisons"][variant]["test"], got["comparisons"][variant]["test"])
            assert got["comparisons"][variant]["cohens_d"] == pytest.approx(
                want["comparisons"][variant]["cohens_d"], rel=1e-9
            )
    # Integer clicks: the same values in the same order and the same seed, the same interval.
    bca = f"pct_{suffix}"
    for variant in ("t1", "t2"):
        assert (
            body["metrics"][bca]["comparisons"][variant]["test"]
            == (expected["metrics"][bca]["comparisons"][variant]["test"])
        )
    mw = body["metrics"][f"mw_{suffix}"]["comparisons"]["t1"]["test"]
    assert mw["prob_superiority"] > 0.5  # the true effect is on revenue in t1
    assert mw["ci_lower"] >= 0  # zero revenue is common: many differences are exactly 0
    assert mw["ci_upper"] > 0
    # The always-valid horizon carries the same (fixed-horizon) test block.
    sequential = analyzer.get(
        f"/experiments/{key}/results", params={"method": "none", "sequential": "true"}
    ).json()
    assert (
        sequential["metrics"][bca]["comparisons"]["t1"]["test"]
        == (body["metrics"][bca]["comparisons"]["t1"]["test"])
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"aggregation": "sum", "test": "chi2"}, "test", "needs a 0/1 metric"),
        ({"aggregation": "mean", "test": "z"}, "test", "needs a 0/1 metric"),
        ({"aggregation": "sum", "test": "t"}, "test", ""),
        ({"aggregation": "sum", "test": "bootstrap_bca", "quantile": 1.5}, "quantile", ""),
        ({"aggregation": "sum", "test": "welch", "quantile": 0.9}, "quantile", "bootstrap"),
    ],
)
def test_a_test_that_does_not_fit_the_metric_is_a_422_naming_the_field(
    analyzer: TestClient, body: dict[str, Any], field: str, message: str
) -> None:
    payload = {"name": f"bad_{uuid.uuid4().hex[:8]}", "source": "outcome",
               "outcome_type": "purchase", **body}  # fmt: skip
    response = analyzer.post("/metrics", json=payload, headers=ADMIN)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    assert message in error["message"]


def test_a_patch_keeps_the_test_fitting_the_metric(analyzer: TestClient) -> None:
    name = f"rev_{uuid.uuid4().hex[:8]}"
    payload = {"name": name, "source": "outcome", "outcome_type": "purchase",
               "aggregation": "sum"}  # fmt: skip
    assert analyzer.post("/metrics", json=payload, headers=ADMIN).status_code == 201
    assert analyzer.get(f"/metric-definitions/{name}").json()["test"] == "welch"
    refused = analyzer.patch(f"/metric-definitions/{name}", json={"test": "chi2"}, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "test"
    changed = analyzer.patch(
        f"/metric-definitions/{name}",
        json={"test": "bootstrap_bca", "quantile": 0.9},
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["test"], changed.json()["quantile"]) == ("bootstrap_bca", 0.9)
    ratio = {"name": f"ratio_{uuid.uuid4().hex[:8]}", "numerator": name, "denominator": name,
             "test": "mann_whitney"}  # fmt: skip
    response = analyzer.post("/metrics", json=ratio, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "test"

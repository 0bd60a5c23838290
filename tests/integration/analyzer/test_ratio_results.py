"""Issue 20 (ratio CUPED, per-event means, CUNOPAC) in the analyzer: its results equal
``splitlab.analyze`` on the same units to 1e-9.

- A ratio metric whose parts have a pre-period is adjusted with both parts' pre-period values
  (ratio CUPED), pushed down to the SQL aggregation like any covariate.
- ``event_mean`` (latency per prediction) is the per-request mean: ``splitlab.analyze`` on one
  row per prediction with ``cluster_col`` equals it.
- In-experiment covariates (``unit_features`` observed after the first exposure) are
  balance-checked: the one the treatment moved is refused with the evidence, the other used.
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
from splitlab.contracts.events import ExposureEvent, PredictionEvent
from splitlab.core.analysis.analyze import CovariateRefusedWarning
from tests.integration.analyzer.conftest import ADMIN, define_metrics, insert_experiment, write
from tests.integration.analyzer.simulation import experiment_row, simulate
from tests.integration.analyzer.test_results_pipeline import assert_same

pytestmark = pytest.mark.integration

WEIGHTS = {"control": 0.5, "t1": 0.25, "t2": 0.25}


def _first_exposures(events: list[Any]) -> dict[str, ExposureEvent]:
    first: dict[str, ExposureEvent] = {}
    for e in events:
        if isinstance(e, ExposureEvent) and (
            e.unit_id not in first or e.occurred_at < first[e.unit_id].occurred_at
        ):
            first[e.unit_id] = e
    return first


def test_ratio_cuped_event_mean_and_cunopac_equal_splitlab_analyze(
    analyzer: TestClient, engine: Engine
) -> None:
    tag = uuid.uuid4().hex[:6]
    key = f"ratio-{tag}"
    sim = simulate(key, n=1500, seed=20, revenue_effect=4.0)
    first = _first_exposures(sim.events)
    rng = np.random.default_rng(20)
    # In-experiment features: the device's speed (untouched), pages seen (moved by treatment).
    during: list[dict[str, Any]] = []
    units = sim.units.copy()
    device = rng.normal(0, 1, len(units))
    pages = rng.normal(0, 1, len(units)) + 0.5 * (units.variant != "control").to_numpy()
    device[rng.random(len(units)) < 0.1] = np.nan  # some units without a value (imputed)
    for unit, d, p in zip(units.unit_id, device, pages, strict=True):
        at = first[unit].occurred_at
        if not np.isnan(d):
            during.append({"unit_id": unit, "name": f"device_{tag}", "value": float(d),
                           "observed_at": (at + timedelta(minutes=30)).isoformat()})  # fmt: skip
            # An older value, before the exposure, is not an in-experiment value.
            during.append({"unit_id": unit, "name": f"device_{tag}", "value": 99.0,
                           "observed_at": (at - timedelta(days=3)).isoformat()})  # fmt: skip
        during.append({"unit_id": unit, "name": f"pages_{tag}", "value": float(p),
                       "observed_at": (at + timedelta(hours=2)).isoformat()})  # fmt: skip
    units[f"device_{tag}"] = device
    units[f"pages_{tag}"] = pages

    define_metrics(analyzer)
    ours = [
        {"name": f"latency_per_request_{tag}", "source": "prediction_latency",
         "aggregation": "event_mean", "pre_period_days": 0, "direction": "lower_is_better"},
        {"name": f"revenue_cunopac_{tag}", "source": "outcome", "outcome_type": "purchase",
         "aggregation": "sum", "pre_period_days": 0,
         "in_experiment_covariates": [f"device_{tag}", f"pages_{tag}"]},
        {"name": f"rpc_cunopac_{tag}", "numerator": "revenue", "denominator": "clicks",
         "in_experiment_covariates": [f"device_{tag}"]},
    ]  # fmt: skip
    for body in ours:
        created = analyzer.post("/metrics", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
    read = analyzer.get(f"/metric-definitions/revenue_cunopac_{tag}").json()
    assert read["in_experiment_covariates"] == [f"device_{tag}", f"pages_{tag}"]
    row = experiment_row(key, guardrails=[])
    names = [b["name"] for b in ours]
    row["metrics"] = {"primary": "revenue_per_click", "secondary": names, "guardrails": []}
    insert_experiment(engine, row)
    loaded = analyzer.post("/unit-features", json={"features": during}, headers=ADMIN)
    assert loaded.status_code == 200, loaded.text
    write(engine, sim.events)

    results = {
        method: analyzer.get(f"/experiments/{key}/results", params={"method": method})
        for method in ("none", "cuped", "auto")
    }
    for response in results.values():
        assert response.status_code == 200, response.text
    bodies = {m: r.json() for m, r in results.items()}

    # Ratio CUPED: the parts' pre-period values as covariates.
    for method in ("none", "cuped", "auto"):
        expected = splitlab.analyze(
            units, metrics=[], ratio_metrics={"revenue_per_click": ("revenue", "clicks")},
            covariates=["revenue_pre", "clicks_pre"], method=method, weights=WEIGHTS,
        ).to_dict()  # fmt: skip
        got = bodies[method]["metrics"]["revenue_per_click"]
        assert_same(expected["metrics"]["revenue_per_click"], got, f"rpc {method}")
    assert bodies["cuped"]["metrics"]["revenue_per_click"]["method"] == "cuped"
    assert "revenue_pre, clicks_pre" in bodies["cuped"]["metrics"]["revenue_per_click"]["detail"]

    # The per-request latency: one row per (non-shadow) prediction, clustered by unit.
    requests = pd.DataFrame(
        [
            (e.unit_id, first[e.unit_id].variant, e.latency_ms)
            for e in sim.events
            if isinstance(e, PredictionEvent) and not e.shadow
        ],
        columns=["unit_id", "variant", f"latency_per_request_{tag}"],
    )
    # Exposed units without a prediction: a row without a value (dropped, as the analyzer does).
    silent = sorted(set(first) - set(requests.unit_id))
    requests = pd.concat(
        [requests, pd.DataFrame({"unit_id": silent, "variant": [first[u].variant for u in silent],
                                 f"latency_per_request_{tag}": np.nan})],
        ignore_index=True,
    )  # fmt: skip
    for method in ("none", "auto"):
        expected = splitlab.analyze(
            requests, metrics=[f"latency_per_request_{tag}"], cluster_col="unit_id",
            method=method, weights=WEIGHTS, lower_is_better=[f"latency_per_request_{tag}"],
        ).to_dict()  # fmt: skip
        name = f"latency_per_request_{tag}"
        assert_same(expected["metrics"][name], bodies[method]["metrics"][name], name)
    per_request = bodies["none"]["metrics"][f"latency_per_request_{tag}"]["comparisons"]["t1"]
    assert per_request["mean_control"] == pytest.approx(
        requests[requests.variant == "control"][f"latency_per_request_{tag}"].mean(), rel=1e-12
    )

    # CUNOPAC: the moved covariate refused with its evidence, the valid one used.
    name = f"revenue_cunopac_{tag}"
    units[name] = units["revenue"]
    for method in ("none", "cuped", "auto"):
        with pytest.warns(CovariateRefusedWarning):
            expected = splitlab.analyze(
                units, metrics=[name], method=method, weights=WEIGHTS,
                in_experiment_covariates=[f"device_{tag}", f"pages_{tag}"],
            ).to_dict()  # fmt: skip
        assert_same(expected["metrics"][name], bodies[method]["metrics"][name], f"{name} {method}")
    checks = bodies["cuped"]["metrics"][name]["in_experiment_covariates"]
    assert [(c["covariate"], c["used"]) for c in checks] == [
        (f"device_{tag}", True),
        (f"pages_{tag}", False),
    ]
    assert checks[1]["p_value"] < 1e-6
    assert (
        f"refused in-experiment covariate(s) pages_{tag}"
        in (bodies["cuped"]["metrics"][name]["reason"])
    )
    # A ratio metric takes in-experiment covariates too.
    rpc = f"rpc_cunopac_{tag}"
    expected = splitlab.analyze(
        units, metrics=[], ratio_metrics={rpc: ("revenue", "clicks")},
        covariates=["revenue_pre", "clicks_pre"], in_experiment_covariates=[f"device_{tag}"],
        method="cuped", weights=WEIGHTS,
    ).to_dict()  # fmt: skip
    assert_same(expected["metrics"][rpc], bodies["cuped"]["metrics"][rpc], rpc)


def test_a_named_covariate_without_values_is_named_in_the_reason(
    analyzer: TestClient, engine: Engine
) -> None:
    """An owner named an in-experiment covariate but posted its values before the exposures
    (and a pre-exposure one never): the answer said only "no covariate method applies to this
    metric; unadjusted", as if none had been named. The reason now names both."""
    tag = uuid.uuid4().hex[:6]
    key = f"unobs-{tag}"
    sim = simulate(key, n=300, seed=21)
    first = _first_exposures(sim.events)
    before = [
        {"unit_id": u, "name": f"device_{tag}", "value": 1.0,
         "observed_at": (e.occurred_at - timedelta(days=1)).isoformat()}
        for u, e in first.items()
    ]  # fmt: skip
    define_metrics(analyzer)
    body = {"name": f"revenue_unobs_{tag}", "source": "outcome", "outcome_type": "purchase",
            "aggregation": "sum", "pre_period_days": 0, "covariates": [f"never_{tag}"],
            "in_experiment_covariates": [f"device_{tag}"]}  # fmt: skip
    assert analyzer.post("/metrics", json=body, headers=ADMIN).status_code == 201
    row = experiment_row(key, guardrails=[])
    row["metrics"] = {"primary": f"revenue_unobs_{tag}", "secondary": [], "guardrails": []}
    insert_experiment(engine, row)
    assert analyzer.post("/unit-features", json={"features": before}, headers=ADMIN).is_success
    write(engine, sim.events)
    answer = analyzer.get(f"/experiments/{key}/results", params={"method": "auto"})
    assert answer.status_code == 200, answer.text
    metric = answer.json()["metrics"][f"revenue_unobs_{tag}"]
    assert metric["method"] == "none"
    assert f"covariate(s) never_{tag}, device_{tag} left out: no analysed unit" in metric["reason"]

"""What results report beyond the comparisons (issue 13, items 4, 8 and 19), through the real
Postgres:

- a shadow variant (weight 0, docs/router.md) is left out of SRM and comparisons and reported
  apart (its units and metric means), instead of a 422 for the whole experiment;
- the fallback share per variant from the stored ``fallback`` column, a flag when a treatment
  mostly fell back to control's model, its gauge and an ``analyzer_actions`` row;
- an explicit method applies per metric: the metrics it cannot apply to are analyzed
  unadjusted and named with the reason, in the body, instead of a 422.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from splitlab.contracts.events import PredictionEvent
from splitlab.web.state import app_state
from splitlab_analyzer.deps import AnalyzerState
from tests.integration.analyzer.conftest import ADMIN, define_metrics, insert_experiment
from tests.integration.analyzer.simulation import T0, Event, _exposure, experiment_row, simulate
from tests.integration.analyzer.test_isolation import write

pytestmark = pytest.mark.integration


def test_a_shadow_variant_is_reported_apart_and_left_out_of_srm_and_comparisons(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    key = f"shadow-{uuid.uuid4().hex[:8]}"
    insert_experiment(
        engine, experiment_row(key, ("control", "treatment", "ranker-next"), (0.5, 0.5, 0.0))
    )
    sim = simulate(key, n=600, seed=11, variants=("control", "treatment"), weights=(0.5, 0.5))
    # Two units that saw the shadow variant while it still had weight (then set to 0).
    early: list[Event] = [
        _exposure(f"{key}-s{i}", key, "ranker-next", T0 + timedelta(hours=i)) for i in range(2)
    ]
    write(engine, [*sim.events, *early])

    answer = analyzer.get(f"/experiments/{key}/results")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["variants"] == ["control", "treatment"]
    assert set(body["srm"]["observed"]) == {"control", "treatment"}
    assert set(body["metrics"]["revenue"]["comparisons"]) == {"treatment"}
    assert body["sample"]["units"] == {
        "control": int((sim.units["variant"] == "control").sum()),
        "treatment": int((sim.units["variant"] == "treatment").sum()),
    }
    shadow = body["shadows"]["ranker-next"]
    assert shadow["units"] == 2
    assert shadow["means"]["clicks"] == 0.0  # no outcomes for those two units
    assert set(shadow["means"]) == set(body["metrics"])
    refreshed = analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN)
    assert refreshed.status_code == 200, refreshed.text


def test_a_treatment_that_mostly_fell_back_is_flagged_exported_and_recorded(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    key = f"fallback-{uuid.uuid4().hex[:8]}"
    row = experiment_row(key, ("control", "treatment"), (0.5, 0.5))
    row["variants"] = [
        {"key": "control", "weight": 0.5, "model": "ranker"},
        {"key": "treatment", "weight": 0.5, "model": "rankr-2"},  # misspelled
    ]
    insert_experiment(engine, row)
    sim = simulate(key, n=300, seed=12, variants=("control", "treatment"), weights=(0.5, 0.5))
    # The router served 9 in 10 treatment predictions from control's model (fallback).
    events: list[Event] = []
    served = {"control": [0, 0], "treatment": [0, 0]}
    for e in sim.events:
        if isinstance(e, PredictionEvent) and not e.shadow:
            fell = e.variant == "treatment" and served["treatment"][0] % 10 != 0
            served[e.variant][0] += 1
            served[e.variant][1] += fell
            if fell:
                e = e.model_copy(update={"fallback": True, "error": "no model 'rankr-2'"})
        events.append(e)
    write(engine, events)

    # The periodic refresh's work (the only place automation flags and acts).
    body = app_state(analyzer.app, AnalyzerState).automation.refresh(key)
    treated, fell = served["treatment"]
    assert fell > 0.8 * treated
    assert body["fallback"]["variants"]["treatment"] == {
        "predictions": treated,
        "fallbacks": fell,
        "share": fell / treated,
    }
    assert body["fallback"]["variants"]["control"]["share"] == 0.0
    assert body["fallback"]["threshold"] == 0.5
    assert body["flags"]["treatment_fallback"] == ["treatment"]
    labels = {"experiment": key, "variant": "treatment"}
    assert REGISTRY.get_sample_value("splitlab_experiment_treatment_fallback", labels) == 1.0
    assert REGISTRY.get_sample_value("splitlab_experiment_fallback_share", labels) == pytest.approx(
        fell / treated
    )
    actions = analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"]
    flag = next(a for a in actions if a["reason"] == "treatment_fallback")
    assert flag["action"] == "flag"
    assert flag["evidence"]["variants"] == ["treatment"]


def test_an_explicit_method_applies_per_metric_and_names_the_ones_it_cannot(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    key = f"method-{uuid.uuid4().hex[:8]}"
    insert_experiment(engine, experiment_row(key, ("control", "treatment"), (0.5, 0.5)))
    write(engine, simulate(key, n=500, seed=13, variants=("control", "treatment"),
                           weights=(0.5, 0.5)).events)  # fmt: skip

    answer = analyzer.get(f"/experiments/{key}/results", params={"method": "cuped"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    methods = body["methods"]
    assert methods["requested"] == "cuped"
    assert methods["used"]["revenue"] == "cuped"
    assert methods["used"]["clicks"] == "cuped"
    assert body["metrics"]["revenue"]["method"] == "cuped"
    # converted has neither covariates nor a pre-period, latency no pre-period events (no
    # predictions before exposure); the ratio metric is adjusted with its parts' pre-periods.
    assert set(methods["not_applied"]) == {"converted", "latency"}
    assert methods["used"]["revenue_per_click"] == "cuped"
    assert methods["used"]["converted"] == "none"
    assert methods["not_applied"]["converted"] == (
        "cuped needs a pre-exposure covariate and 'converted' has none; unadjusted; define "
        "covariates or pre_period_days for the metric (POST /metrics)"
    )
    assert "covariates=[" not in answer.text
    assert body["metrics"]["converted"]["requested_method"] == "cuped"

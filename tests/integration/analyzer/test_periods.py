"""Acceptance of allocation periods (issue 14): an experiment ramped from 50/50 to 20/80 with
PATCH, through the real assignment app (registry, /assign, exposures) and Postgres.

- The issue's reproduction (2,000 units, ramp, 2,000 more): no SRM flag, no page (gauge 0, no
  flag action), no auto-pause, the decision unaffected; the results list both periods.
- Its results equal ``splitlab.analyze`` given the period column and splits (1e-9) for none,
  CUPED, regression, CUPAC and sequential; the pooled estimate is biased by the drift, the
  stratified one is not.
- A real mismatch in the second period (10% of the treatment's units lost) is detected and
  pauses the auto-stop experiment.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

import splitlab
from splitlab.contracts.events import ExposureEvent, OutcomeEvent
from splitlab.core.stats.srm import srm_test
from splitlab.platform.settings import Settings
from splitlab.web.state import app_state
from splitlab_analyzer.app import create_app
from splitlab_analyzer.deps import AnalyzerState
from splitlab_trainer.resources import build_resources
from tests.integration.analyzer.conftest import ADMIN, CollectingPublisher, assign, write
from tests.integration.analyzer.test_results_pipeline import assert_same

pytestmark = pytest.mark.integration

METRIC = {"name": "ramp_value", "source": "outcome", "outcome_type": "ramp_value",
          "aggregation": "sum", "pre_period_days": 14}  # fmt: skip
EVEN = {"control": 0.5, "treatment": 0.5}
RAMP = {"control": 0.2, "treatment": 0.8}
DRIFT, EFFECT = 5.0, 0.5


def start_experiment(assignment: TestClient) -> str:
    key = f"ramp-{uuid.uuid4().hex[:8]}"
    body = {
        "key": key,
        "name": "ramped ranker",
        "variants": [{"key": v, "weight": w} for v, w in EVEN.items()],
        "metrics": {"primary": "ramp_value", "secondary": [], "guardrails": []},
        "auto_stop": True,
    }
    assert assignment.post("/experiments", json=body, headers=ADMIN).status_code == 201
    assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200
    return key


def assign_http(assignment: TestClient, key: str, units: list[str]) -> None:
    for unit in units:
        answer = assignment.post("/assign", json={"unit_id": unit, "experiment_key": key})
        assert answer.status_code == 200, answer.text
        assert answer.json()["in_experiment"], answer.json()


def ramp(assignment: TestClient, key: str) -> None:
    variants = [{"key": v, "weight": w} for v, w in RAMP.items()]
    patched = assignment.patch(f"/experiments/{key}", json={"variants": variants}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    assert patched.json()["allocation_period"] == 1


def outcomes_and_units(events: list[ExposureEvent], seed: int) -> tuple[list[Any], pd.DataFrame]:
    """A pre-exposure and a post-exposure outcome per unit: the baseline jumps by ``DRIFT`` in
    the second period, treatment adds ``EFFECT``; and the per-unit frame they mean."""
    rng = np.random.default_rng(seed)
    first: dict[str, ExposureEvent] = {}
    for e in events:
        if e.unit_id not in first or e.occurred_at < first[e.unit_id].occurred_at:
            first[e.unit_id] = e
    out: list[Any] = []
    rows = []
    for unit, e in first.items():
        x = float(rng.normal(10, 2))
        y = x + DRIFT * e.allocation_period + EFFECT * (e.variant == "treatment")
        y += float(rng.normal(0, 1))
        at = e.occurred_at
        out.append(OutcomeEvent(unit_id=unit, outcome_type="ramp_value", value=x,
                                occurred_at=at - timedelta(days=1)))  # fmt: skip
        out.append(OutcomeEvent(unit_id=unit, outcome_type="ramp_value", value=y,
                                occurred_at=at + timedelta(seconds=1)))  # fmt: skip
        rows.append((unit, e.variant, e.allocation_period, y, x))
    frame = pd.DataFrame(rows, columns=["unit_id", "variant", "period", "ramp_value",
                                        "ramp_value_pre"])  # fmt: skip
    # In the analyzer's unit order (CUPAC's folds follow it).
    return out, frame.sort_values("unit_id").reset_index(drop=True)


def reference(frame: pd.DataFrame, method: str, sequential: bool = False) -> dict[str, Any]:
    return splitlab.analyze(
        frame, metrics=["ramp_value"], covariates=["ramp_value_pre"], method=method,
        weights=RAMP, sequential=sequential, period_col="period",
        period_weights={0: EVEN, 1: RAMP}, cupac_folds=3,
    ).to_dict()  # fmt: skip


def test_a_ramp_raises_no_srm_flag_and_results_equal_splitlab_analyze_per_period(
    analyzer_settings: Settings,
    assignment: TestClient,
    exposures: CollectingPublisher,
    engine: Engine,
) -> None:
    key = start_experiment(assignment)
    tag = uuid.uuid4().hex[:6]
    before = [f"{tag}-a{i}" for i in range(2000)]
    assign(assignment, key, before)
    ramp(assignment, key)
    assign(assignment, key, [f"{tag}-b{i}" for i in range(2000)])
    assign_http(assignment, key, before[:300])  # returning units keep their variant and period
    assert {e.allocation_period for e in exposures.events[:2000]} == {0}
    assert {e.allocation_period for e in exposures.events[2000:]} == {1}
    outcomes, frame = outcomes_and_units(exposures.events, seed=1)
    write(engine, [*exposures.events, *outcomes])
    units = frame.groupby(["period", "variant"]).size().to_dict()
    # What the analyzer did before periods: the pooled counts against the current weights.
    pooled = frame.variant.value_counts().to_dict()
    assert srm_test(pooled, RAMP).status == "mismatch"

    with TestClient(create_app(analyzer_settings, assignment_http=assignment)) as analyzer:
        created = analyzer.post("/metrics", json=METRIC, headers=ADMIN)
        assert created.status_code in (201, 409), created.text
        # The periodic refresh's work for this experiment (the only place automation acts).
        body = app_state(analyzer.app, AnalyzerState).automation.refresh(key)
        actions = analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"]
        results = {
            (method, sequential): analyzer.get(
                f"/experiments/{key}/results",
                params={"method": method, "sequential": str(sequential).lower()},
            ).json()
            for method, sequential in [("none", False), ("cuped", False),
                                       ("regression", False), ("none", True), ("cuped", True)]
        }  # fmt: skip
        queued = analyzer.post(f"/experiments/{key}/cupac", headers=ADMIN)
        assert queued.status_code == 202, queued.text
        # The trainer's code path in process (its worker's job), then the results.
        trainer = build_resources(analyzer_settings, engine)
        trainer.trainings.run_many(trainer.planner.request(key, None))
        results[("cupac", False)] = analyzer.get(
            f"/experiments/{key}/results", params={"method": "cupac"}
        ).json()
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                text("SELECT unit_id, prediction FROM cupac_predictions WHERE experiment_key = :k"),
                {"k": key},
            ).all()
        )
    frame["prediction"] = frame.unit_id.map(stored)
    assert frame.prediction.notna().all()

    # No flag, no page, no pause; the decision is not "fix assignment".
    assert body["srm"]["status"] == "ok"
    assert body["flags"]["srm"] is False
    assert not [a for a in actions if a["reason"] == "srm"]
    gauge = REGISTRY.get_sample_value("splitlab_experiment_srm_mismatch", {"experiment": key})
    assert gauge == 0.0
    assert assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"] == "running"
    assert not any("sample ratio" in r for r in body["decisions"]["treatment"]["reasons"])
    # The periods: when, which weights, units per variant.
    periods = body["periods"]
    assert [p["period"] for p in periods] == [0, 1]
    assert [p["weights"] for p in periods] == [EVEN, RAMP]
    assert all(p["start"] is not None for p in periods)
    assert periods[0]["start"] < periods[1]["start"]
    for p in periods:
        assert p["units"] == {v: units[(p["period"], v)] for v in ("control", "treatment")}
        assert p["srm_status"] == "ok"

    # The analyzer equals splitlab.analyze with the period column, for every method.
    for (method, sequential), got in results.items():
        expected = reference(frame, method, sequential)
        metric = got["metrics"]["ramp_value"]
        assert metric["method"] == method
        if method == "cupac":  # CUPAC is Lin regression on the trainer's stored predictions
            expected = splitlab.analyze(
                frame, metrics=["ramp_value"], covariates=["prediction"], method="regression",
                weights=RAMP, period_col="period", period_weights={0: EVEN, 1: RAMP},
            ).to_dict()  # fmt: skip
            for field in ("effect", "ci_lower", "ci_upper", "p_value", "variance_reduction"):
                assert metric["comparisons"]["treatment"][field] == pytest.approx(
                    expected["metrics"]["ramp_value"]["comparisons"]["treatment"][field],
                    rel=1e-9,
                ), field
            continue
        assert_same(expected["metrics"]["ramp_value"], metric, f"{method} {sequential}")
        assert_same(expected["srm"], got["srm"], "srm")
        for want, have in zip(expected["periods"], got["periods"], strict=True):
            assert_same({**want, "start": None}, {**have, "start": None}, "periods")
        assert got["decisions"] == expected["decisions"]
    # Stratified: the true effect is inside the CI; pooled: the drift leaks into the effect.
    stratified = results[("none", False)]["metrics"]["ramp_value"]["comparisons"]["treatment"]
    # Within 4 standard errors (not the 95% CI, which misses in 1 run of 20: the unit ids are
    # random, so the data are); the pooled estimate below is off by more than 1.0.
    se = (stratified["ci_upper"] - stratified["ci_lower"]) / (2 * 1.959964)
    assert abs(stratified["effect"] - EFFECT) < 4 * se
    naive = splitlab.analyze(frame, metrics=["ramp_value"], method="none").to_dict()
    assert naive["metrics"]["ramp_value"]["comparisons"]["treatment"]["effect"] > EFFECT + 1.0


def test_a_real_mismatch_in_the_second_period_is_detected_and_pauses(
    analyzer_settings: Settings,
    assignment: TestClient,
    exposures: CollectingPublisher,
    engine: Engine,
) -> None:
    key = start_experiment(assignment)
    tag = uuid.uuid4().hex[:6]
    assign(assignment, key, [f"{tag}-a{i}" for i in range(2000)])
    ramp(assignment, key)
    assign(assignment, key, [f"{tag}-b{i}" for i in range(12000)])
    # A logging fault loses every fifth treatment exposure of the second period: about 1,900
    # of 9,600, a deficit near 9.6 standard deviations, where the always-valid SRM test (which
    # the flag and the pause use) needs about 5 at this size: in 2,000 simulated runs of this
    # test's counts its log Bayes factor was 39 on average (SD 9), the threshold log(1000)
    # 6.9, and no run fell short. (A tenth lost, near 4.8 SD, is at the edge of what it
    # detects: docs/studies/sequential_srm.md.)
    second = [e for e in exposures.events if e.allocation_period == 1]
    lost = {e.unit_id for e in second if e.variant == "treatment"}
    lost = set(sorted(lost)[::5])
    kept = [e for e in exposures.events if e.unit_id not in lost]
    write(engine, kept)

    with TestClient(create_app(analyzer_settings, assignment_http=assignment)) as analyzer:
        created = analyzer.post("/metrics", json=METRIC, headers=ADMIN)
        assert created.status_code in (201, 409), created.text
        # The periodic refresh's work for this experiment (the only place automation acts).
        body = app_state(analyzer.app, AnalyzerState).automation.refresh(key)
        actions = analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"]

    assert body["srm"]["status"] == "mismatch", body["srm"]
    assert body["flags"]["srm"] is True
    assert [p["srm_status"] for p in body["periods"]] == ["ok", "mismatch"]
    assert {(a["action"], a["reason"]) for a in actions} >= {("flag", "srm"), ("pause", "srm")}
    assert assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"] == "paused"

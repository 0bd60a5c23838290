"""The analyzer's SRM flag, pause and gauges use the always-valid test (issue 20).

Through the real assignment app (registry, /assign, exposures) and Postgres:

- 400 treatment exposures lost out of about 10,000 units: the chi-square of the counts is below
  0.001 (what a refresh loop reading it at every pass would flag sooner or later in a sound
  experiment too), the always-valid test is not: no flag, no pause, mismatch gauge 0, and the
  always-valid gauge equals ``sequential_srm_test`` of the same counts.
- 800 lost: the always-valid test flags it, the analyzer pauses the auto-stop experiment.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from splitlab.core.stats.sequential_srm import sequential_srm_test
from splitlab.core.stats.srm import srm_test
from splitlab.platform.settings import Settings
from splitlab.web.state import app_state
from splitlab_analyzer.app import create_app
from splitlab_analyzer.deps import AnalyzerState
from tests.integration.analyzer.conftest import ADMIN, CollectingPublisher, assign, write
from tests.integration.analyzer.test_periods import METRIC, outcomes_and_units, start_experiment

pytestmark = pytest.mark.integration


def run(
    analyzer_settings: Settings,
    assignment: TestClient,
    exposures: CollectingPublisher,
    engine: Engine,
    lost: int,
) -> tuple[str, dict[str, int], dict[str, object], list[dict[str, object]]]:
    key = start_experiment(assignment)
    tag = uuid.uuid4().hex[:6]
    assign(assignment, key, [f"{tag}-{i}" for i in range(10_000)])
    control = [e for e in exposures.events if e.variant == "control"]
    treatment = [e for e in exposures.events if e.variant == "treatment"]
    # A logging fault: treatment keeps `lost` fewer exposures than control has.
    kept = [*control, *treatment[: len(control) - lost]]
    outcomes, _ = outcomes_and_units(kept, seed=2)
    write(engine, [*kept, *outcomes])
    counts = {"control": len(control), "treatment": len(control) - lost}
    with TestClient(create_app(analyzer_settings, assignment_http=assignment)) as analyzer:
        created = analyzer.post("/metrics", json=METRIC, headers=ADMIN)
        assert created.status_code in (201, 409), created.text
        body = app_state(analyzer.app, AnalyzerState).automation.refresh(key)
        actions = analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"]
    return key, counts, body, actions


def test_a_chi_square_only_mismatch_raises_no_flag_and_no_pause(
    analyzer_settings: Settings,
    assignment: TestClient,
    exposures: CollectingPublisher,
    engine: Engine,
) -> None:
    key, counts, body, actions = run(analyzer_settings, assignment, exposures, engine, 400)
    assert srm_test(counts).p_value < 0.001
    expected = sequential_srm_test(counts)
    assert expected.status == "ok"
    srm = body["srm"]
    assert isinstance(srm, dict)
    assert srm["observed"] == counts
    assert srm["status"] == "mismatch"  # the chi-square, reported
    assert srm["sequential"]["status"] == "ok"
    assert srm["sequential"]["p_value"] == pytest.approx(expected.p_value, rel=1e-9)
    assert body["flags"]["srm"] is False  # type: ignore[index]
    assert not [a for a in actions if a["reason"] == "srm"]
    labels = {"experiment": key}
    assert REGISTRY.get_sample_value("splitlab_experiment_srm_mismatch", labels) == 0.0
    gauge = REGISTRY.get_sample_value("splitlab_experiment_srm_sequential_p_value", labels)
    assert gauge == pytest.approx(expected.p_value, rel=1e-9)
    assert assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"] == "running"


def test_an_always_valid_mismatch_flags_and_pauses(
    analyzer_settings: Settings,
    assignment: TestClient,
    exposures: CollectingPublisher,
    engine: Engine,
) -> None:
    key, counts, body, actions = run(analyzer_settings, assignment, exposures, engine, 800)
    assert sequential_srm_test(counts).status == "mismatch"
    assert body["flags"]["srm"] is True  # type: ignore[index]
    assert {(a["action"], a["reason"]) for a in actions} >= {("flag", "srm"), ("pause", "srm")}
    labels = {"experiment": key}
    assert REGISTRY.get_sample_value("splitlab_experiment_srm_mismatch", labels) == 1.0
    assert assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"] == "paused"

"""One bad experiment never disables another's analysis (issue 13, items 2 and 5), through the
real Postgres:

- outcome values of 1e308 stored before the edges held the limit overflowed the per-unit sums;
  the rollup catch-up (every experiment, one transaction) then failed every refresh. Now such
  rows are left out and counted, and each experiment's catch-up is its own savepoint;
- the periodic pass refreshes each experiment on its own and counts a failure per experiment
  (``splitlab_analyzer_refresh_failures_total``) next to the last successful analysis.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from splitlab.web.state import app_state
from splitlab_analyzer.consumer.rows import RawRecord, build_batch
from splitlab_analyzer.consumer.sink import PostgresSink
from splitlab_analyzer.deps import AnalyzerState
from tests.integration.analyzer.conftest import ADMIN, define_metrics, insert_experiment
from tests.integration.analyzer.simulation import T0, Event, experiment_row, simulate

pytestmark = pytest.mark.integration

TWO = ("control", "treatment")


def write(engine: Engine, events: list[Event]) -> None:
    records = [RawRecord(e.topic, 0, i, e.key(), e.to_bytes()) for i, e in enumerate(events)]
    PostgresSink(engine).write(build_batch(records, {}).rows)


def experiment(engine: Engine, seed: int, **row: Any) -> tuple[str, list[str]]:
    """A running two-arm experiment with simulated events; its key and units."""
    key = f"iso-{uuid.uuid4().hex[:8]}"
    insert_experiment(engine, {**experiment_row(key, TWO, (0.5, 0.5)), **row})
    sim = simulate(key, n=400, seed=seed, variants=TWO, weights=(0.5, 0.5))
    write(engine, sim.events)
    return key, [str(u) for u in sim.units["unit_id"]]


def poison(engine: Engine, unit: str, value: float = 1e308, count: int = 2) -> None:
    """What the router accepted before the limit: outcomes it can no longer store."""
    with engine.begin() as c:
        for _ in range(count):
            c.execute(
                text(
                    "INSERT INTO outcomes (event_id, schema_version, occurred_at, unit_id, "
                    "outcome_type, value) VALUES (:id, 1, :at, :u, 'purchase', :v)"
                ),
                {"id": uuid.uuid4(), "at": T0 + timedelta(days=9), "u": unit, "v": value},
            )
        c.execute(text("INSERT INTO rollup_backlog (unit_id) VALUES (:u)"), {"u": unit})


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_poisoned_experiment_answers_and_does_not_stop_another_ones_refresh(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    good, _ = experiment(engine, seed=1)
    bad, bad_units = experiment(engine, seed=2)
    for key in (good, bad):  # builds both experiments' rollups
        assert analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN).status_code == 200
    before = analyzer.get(f"/experiments/{bad}/results", params={"method": "none"}).json()

    poison(engine, bad_units[0])

    refreshed = analyzer.post(f"/experiments/{good}/refresh", headers=ADMIN)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["timings"]["per_unit"] == "rollups"
    healthy = analyzer.get(f"/experiments/{good}/results", params={"method": "cuped"})
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["excluded_values"]["outcomes"] == 0
    answer = analyzer.post(f"/experiments/{bad}/refresh", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["excluded_values"] == {"limit": 1e12, "outcomes": 2, "unit_features": 0}
    assert body["flags"]["excluded_values"] == 2
    assert sample("splitlab_experiment_excluded_values", experiment=bad) == 2.0
    after = analyzer.get(f"/experiments/{bad}/results", params={"method": "none"}).json()
    assert after["timings"]["per_unit"] == "rollups"
    revenue = after["metrics"]["revenue"]["comparisons"]["treatment"]
    assert revenue["effect"] == pytest.approx(
        before["metrics"]["revenue"]["comparisons"]["treatment"]["effect"], rel=1e-12
    )
    # From the events (no rollups) the same rows are left out.
    app_state(analyzer.app, AnalyzerState).automation.results.rollups.drop(bad)
    events = analyzer.get(f"/experiments/{bad}/results", params={"method": "cuped"})
    assert events.status_code == 200, events.text
    assert events.json()["timings"]["per_unit"] == "events"
    assert events.json()["excluded_values"]["outcomes"] == 2


def test_a_poisoned_unit_feature_is_left_out_and_counted(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    key = f"iso-{uuid.uuid4().hex[:8]}"
    insert_experiment(engine, experiment_row(key, TWO, (0.5, 0.5)))
    sim = simulate(key, n=400, seed=3, variants=TWO, weights=(0.5, 0.5))
    write(engine, sim.events)
    loaded = analyzer.post("/unit-features", json={"features": sim.features}, headers=ADMIN)
    assert loaded.status_code == 200, loaded.text
    units = [str(u) for u in sim.units["unit_id"]]
    with engine.begin() as c:  # the latest value before the unit's first exposure
        c.execute(
            text(
                "INSERT INTO unit_features (unit_id, name, observed_at, value) "
                "SELECT unit_id, 'spend_30d', first_at - interval '1 second', 1e308 "
                "FROM experiment_units WHERE experiment_key = :k AND unit_id = :u"
            ),
            {"k": key, "u": units[0]},
        )
    answer = analyzer.get(f"/experiments/{key}/results", params={"method": "regression"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["excluded_values"]["unit_features"] == 1
    revenue = answer.json()["metrics"]["revenue"]
    assert revenue["method"] == "regression"
    assert revenue["variance_reduction"] > 0
    refused = analyzer.post(
        "/unit-features",
        json={"features": [{"unit_id": "u", "name": "spend_30d", "value": 1e13,
                            "observed_at": "2026-01-01T00:00:00Z"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "features.0.value"
    assert "between -1e+12 and 1e+12" in error["message"]


def test_a_catch_up_that_fails_for_one_experiment_leaves_the_others_caught_up(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    good, _ = experiment(engine, seed=4)
    bad, bad_units = experiment(engine, seed=5)
    for key in (good, bad):
        assert analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN).status_code == 200
    # A stored plan whose SQL fails in Postgres (an interval out of range): any failure of one
    # experiment's catch-up, not only an overflow.
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE experiment_rollups SET slots = jsonb_set(slots, '{0,seconds}', "
                "'1e300'::jsonb) WHERE experiment_key = :k"
            ),
            {"k": bad},
        )
    write(engine, simulate(good, n=50, seed=6, variants=TWO, weights=(0.5, 0.5)).events)
    with engine.begin() as c:
        c.execute(text("INSERT INTO rollup_backlog (unit_id) VALUES (:u)"), {"u": bad_units[0]})

    caught = app_state(analyzer.app, AnalyzerState).automation.results.rollups.catch_up()
    assert caught.failed == (bad,)
    assert caught.units > 0
    with engine.connect() as c:
        built = dict(c.execute(text(
            "SELECT experiment_key, built_at IS NOT NULL FROM experiment_rollups "
            "WHERE experiment_key IN (:a, :b)"), {"a": good, "b": bad}).all())  # fmt: skip
        backlog = c.execute(text("SELECT count(*) FROM rollup_backlog")).scalar_one()
    assert built == {good: True, bad: False}
    assert backlog == 0
    assert sample("splitlab_analyzer_rollup_catch_up_failures_total", experiment=bad) == 1.0

    fresh = analyzer.post(f"/experiments/{good}/refresh", headers=ADMIN).json()
    assert fresh["timings"]["per_unit"] == "rollups"
    assert fresh["sample"]["total_units"] == 450
    # Rebuilt from its definitions:
    rebuilt = analyzer.post(f"/experiments/{bad}/refresh", headers=ADMIN)
    assert rebuilt.status_code == 200, rebuilt.text
    assert rebuilt.json()["timings"]["per_unit"] == "rollups"


def test_the_periodic_pass_counts_a_failing_experiment_and_refreshes_the_others(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    good, _ = experiment(engine, seed=7)
    broken = experiment_row("x", TWO, (0.5, 0.5))["metrics"]
    broken = {**broken, "secondary": [*broken["secondary"], "never_defined"]}
    bad, _ = experiment(engine, seed=8, metrics=broken)
    automation = app_state(analyzer.app, AnalyzerState).automation

    automation.refresh_running()

    failures = "splitlab_analyzer_refresh_failures_total"
    last = "splitlab_experiment_last_analysis_timestamp_seconds"
    assert sample(failures, experiment=bad, **{"pass": "full"}) == 1.0
    assert sample(failures, experiment=good, **{"pass": "full"}) == 0.0
    # Never analysed: its clock starts when the analyzer first saw it (not at 0, which made
    # SplitLabAnalysisStale page for it at once), and no failure moves it.
    first_seen = sample(last, experiment=bad, **{"pass": "full"}) or 0
    assert time.time() - 600 < first_seen <= time.time()
    assert (sample(last, experiment=good, **{"pass": "full"}) or 0) > 0
    assert sample("splitlab_experiment_units", experiment=good, variant="control") is not None
    assert (sample("splitlab_analyzer_pass_completed_timestamp_seconds", **{"pass": "full"})
            or 0) > 0  # fmt: skip

    automation.refresh_running()
    assert sample(failures, experiment=bad, **{"pass": "full"}) == 2.0
    assert sample(last, experiment=bad, **{"pass": "full"}) == first_seen


def test_an_experiment_without_exposures_yet_is_evaluated_not_failing(
    analyzer: TestClient, engine: Engine
) -> None:
    """Just started, nothing exposed: both passes find nothing to judge. Counted as a failure,
    it raised SplitLabAnalysisFailing (and, never analysed, SplitLabAnalysisStale) for every
    experiment in the seconds between its start and its first ingested exposure."""
    define_metrics(analyzer)
    key = f"iso-{uuid.uuid4().hex[:8]}"
    insert_experiment(engine, experiment_row(key, TWO, (0.5, 0.5)))
    automation = app_state(analyzer.app, AnalyzerState).automation

    automation.refresh_running()
    automation.check_guardrails()

    failures = "splitlab_analyzer_refresh_failures_total"
    last = "splitlab_experiment_last_analysis_timestamp_seconds"
    for pass_ in ("full", "guardrails"):
        assert sample(failures, experiment=key, **{"pass": pass_}) == 0.0, pass_
        assert (sample(last, experiment=key, **{"pass": pass_}) or 0) > 0, pass_
    assert analyzer.get(f"/experiments/{key}/results", headers=ADMIN).status_code == 404

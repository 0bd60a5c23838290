"""Results history (issue 19, item 1): one snapshot per scheduled snapshot pass, a final one
when the experiment stops, and the last snapshot says what ``GET /results`` says."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from splitlab.platform.storage.models import Experiment
from splitlab_analyzer.automation import Automation
from tests.integration.analyzer.conftest import define_metrics, insert_experiment
from tests.integration.analyzer.simulation import experiment_row, simulate
from tests.integration.analyzer.test_isolation import write

pytestmark = pytest.mark.integration

TWO = ("control", "treatment")


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def history(client: TestClient, key: str) -> list[dict[str, Any]]:
    answer = client.get(f"/experiments/{key}/results/history")
    assert answer.status_code == 200, answer.text
    assert answer.json()["experiment_key"] == key
    snapshots: list[dict[str, Any]] = answer.json()["snapshots"]
    return snapshots


def test_one_snapshot_per_pass_a_final_one_at_stop_and_the_last_equals_get_results(
    analyzer: TestClient, engine: Engine
) -> None:
    define_metrics(analyzer)
    key = f"hist-{uuid.uuid4().hex[:8]}"
    insert_experiment(engine, experiment_row(key, TWO, (0.5, 0.5)))
    sim = simulate(key, n=900, seed=19, variants=TWO, weights=(0.5, 0.5))
    half = len(sim.events) // 2
    automation: Automation = analyzer.app.state.automation  # type: ignore[attr-defined]
    assert history(analyzer, key) == []

    write(engine, sim.events[:half])
    assert automation.snapshot_pass() >= 1
    write(engine, sim.events[half:])
    assert automation.snapshot_pass() >= 1

    snapshots = history(analyzer, key)
    assert [s["reason"] for s in snapshots] == ["refresh", "refresh"]
    first, last = snapshots
    assert sum(first["units"].values()) < sum(last["units"].values())
    assert sum(last["units"].values()) == len(sim.units)

    results = analyzer.get(f"/experiments/{key}/results").json()
    assert last["units"] == results["sample"]["units"]
    assert close(last["srm_p_value"], results["srm"]["p_value"])
    assert last["decisions"] == results["decisions"]
    assert last["computed_at"].replace("Z", "+00:00") == results["computed_at"]
    rows = {(m["metric"], m["variant"]): m for m in last["metrics"]}
    expected = {(name, v) for name, m in results["metrics"].items() for v in m["comparisons"]}
    assert set(rows) == expected
    assert len(rows) == 7  # seven metrics, one treatment
    for (name, variant), row in rows.items():
        metric = results["metrics"][name]
        c = metric["comparisons"][variant]
        seq = results["monitoring"][name][variant]
        assert row["method"] == metric["method"]
        assert close(row["variance_reduction"], metric["variance_reduction"])
        assert (row["n_control"], row["n_treatment"]) == (c["n_control"], c["n_treatment"])
        for field in ("mean_control", "mean_treatment", "effect", "ci_lower", "ci_upper",
                      "p_value"):  # fmt: skip
            assert close(row[field], c[field]), (name, field)
        assert close(row["cs_lower"], seq["cs_lower"])
        assert close(row["cs_upper"], seq["cs_upper"])
        assert close(row["always_valid_p_value"], seq["always_valid_p_value"])

    with engine.begin() as connection:
        connection.execute(update(Experiment).where(Experiment.key == key).values(status="stopped"))
    automation.snapshot_pass()
    automation.snapshot_pass()  # the final snapshot is taken once
    assert [s["reason"] for s in history(analyzer, key)] == ["refresh", "refresh", "stop"]


def test_history_of_an_unknown_experiment_is_empty(analyzer: TestClient) -> None:
    answer = analyzer.get("/experiments/no-such-experiment/results/history")
    assert answer.status_code == 200
    assert answer.json() == {"experiment_key": "no-such-experiment", "snapshots": []}

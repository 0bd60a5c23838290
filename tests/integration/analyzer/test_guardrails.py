"""A violated guardrail pauses an auto-stop experiment through the assignment service's API,
from the periodic refresh only: a results read (even a cache miss) and a manual refresh change
nothing. Afterwards /assign answers control. The evidence is in analyzer_actions, the actor in
the registry's audit log (the analyzer's own key's name), and the violation in the gauges."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import Engine

from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app
from splitlab_analyzer.consumer.rows import RawRecord, build_batch
from splitlab_analyzer.consumer.sink import PostgresSink
from tests.integration.analyzer.conftest import ADMIN, ADMIN_KEY, define_metrics, wait_until
from tests.integration.analyzer.simulation import simulate

pytestmark = pytest.mark.integration


class DiscardingPublisher:
    def publish(self, event: Any) -> None:
        pass


ANALYZER_KEY = "analyzer-own-key-0123456789"


@pytest.fixture
def keyed_settings(analyzer_settings: Settings) -> Settings:
    """Both services know the analyzer's own key (as they would from one .env)."""
    return analyzer_settings.model_copy(update={"analyzer_api_key": SecretStr(ANALYZER_KEY)})


@pytest.fixture
def assignment(keyed_settings: Settings, redis_client: Any) -> Iterator[TestClient]:
    from splitlab_assignment.app import create_app as create_assignment_app

    app = create_assignment_app(
        keyed_settings.model_copy(
            update={"admin_api_key": SecretStr(ADMIN_KEY), "preflight_checks": False}
        ),
        publisher_factory=lambda _settings: DiscardingPublisher(),  # type: ignore[arg-type,return-value]
    )
    with TestClient(app) as client:
        yield client


def test_guardrail_violation_pauses_an_auto_stop_experiment_and_assign_returns_control(
    keyed_settings: Settings, assignment: TestClient, engine: Engine
) -> None:
    key = f"guard-{uuid.uuid4().hex[:8]}"
    body = {
        "key": key,
        "name": "latency regression",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": {
            "primary": "revenue",
            "secondary": [],
            "guardrails": [{"metric": "latency", "margin": 0.02}],
        },
        "auto_stop": True,
        "planned_sample_size": 4000,
    }
    created = assignment.post("/experiments", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200

    # Treatment predictions are 40% slower: far beyond the 2% margin.
    sim = simulate(key, n=1500, seed=5, latency_effect=0.4, variants=("control", "treatment"),
                   weights=(0.5, 0.5))  # fmt: skip
    records = [RawRecord(e.topic, 0, i, e.key(), e.to_bytes()) for i, e in enumerate(sim.events)]
    PostgresSink(engine).write(build_batch(records, {}).rows)

    def status() -> str:
        return str(assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"])

    with TestClient(create_app(keyed_settings, assignment_http=assignment)) as analyzer:
        define_metrics(analyzer)
        # A read on a cache miss computes the violation and acts on nothing.
        read = analyzer.get(f"/experiments/{key}/results")
        assert read.status_code == 200, read.text
        assert read.json()["flags"]["guardrail_violated"] == ["latency"]
        assert status() == "running"
        assert analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"] == []
        # A manual refresh is a change of the cache and gauges: the admin key; no action either.
        assert analyzer.post(f"/experiments/{key}/refresh").status_code == 401
        refreshed = analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN)
        assert refreshed.status_code == 200, refreshed.text
        result = refreshed.json()
        assert status() == "running"
        assert analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"] == []

    assert result["flags"]["guardrail_violated"] == ["latency"]
    (guard,) = result["guardrails"]
    assert guard["violated"]
    assert guard["always_valid_p_value"] < 0.05
    assert guard["harm_lower"] > 0.02
    assert (
        REGISTRY.get_sample_value(
            "splitlab_experiment_guardrail_violated",
            {"experiment": key, "metric": "latency", "variant": "treatment"},
        )
        == 1.0
    )

    # The scheduled loop is what acts.
    looping = keyed_settings.model_copy(update={"analyzer_refresh_interval_seconds": 0.2})
    with TestClient(create_app(looping, assignment_http=assignment)) as analyzer:
        wait_until(lambda: status() == "paused", 30, "the periodic refresh to pause it")
        actions = analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"]

    for unit in ("a", "b", "c", "d"):
        answer = assignment.post("/assign", json={"unit_id": unit, "experiment_key": key}).json()
        assert answer["variant"] == "control"
        assert answer["in_experiment"] is False

    kinds = {(a["action"], a["outcome"]) for a in actions}
    assert ("pause", "paused") in kinds
    assert ("flag", "flagged") in kinds
    pause = next(a for a in actions if a["action"] == "pause")
    assert pause["reason"] == "guardrail_violated"
    assert pause["evidence"]["guardrail_violated"]["guardrails"][0]["metric"] == "latency"
    audit = assignment.get(f"/experiments/{key}/audit", headers=ADMIN).json()["entries"]
    assert audit[0]["action"] == "pause"
    assert audit[0]["actor"] == "splitlab-analyzer"
    assert audit[1]["actor"] == "admin"


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_the_guardrail_pass_pauses_and_the_paused_experiment_stays_exported_until_stopped(
    analyzer_settings: Settings, assignment: TestClient, engine: Engine
) -> None:
    """Issue 13, item 7: the guardrail pass (its own, shorter schedule) pauses the experiment;
    a paused experiment keeps its gauges, so SplitLabGuardrailViolated does not resolve on its
    own, and SplitLabPausedByGuardrail holds until a person acts (here: stops it)."""
    key = f"guard-{uuid.uuid4().hex[:8]}"
    body = {
        "key": key,
        "name": "latency regression",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": {"primary": "revenue", "secondary": ["clicks"],
                    "guardrails": [{"metric": "latency", "margin": 0.02}]},
        "auto_stop": True,
        "planned_sample_size": 4000,
    }  # fmt: skip
    assert assignment.post("/experiments", json=body, headers=ADMIN).status_code == 201
    assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200
    sim = simulate(key, n=1500, seed=5, latency_effect=0.4, variants=("control", "treatment"),
                   weights=(0.5, 0.5))  # fmt: skip
    records = [RawRecord(e.topic, 0, i, e.key(), e.to_bytes()) for i, e in enumerate(sim.events)]
    PostgresSink(engine).write(build_batch(records, {}).rows)
    guard = {"experiment": key, "metric": "latency", "variant": "treatment"}

    with TestClient(create_app(analyzer_settings, assignment_http=assignment)) as analyzer:
        define_metrics(analyzer)
        automation = analyzer.app.state.automation  # type: ignore[attr-defined]

        assert automation.check_guardrails() >= 1
        assert assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"] == "paused"
        assert sample("splitlab_experiment_guardrail_violated", **guard) == 1.0
        assert sample("splitlab_experiment_paused_by_analyzer", experiment=key) == 1.0
        when = sample("splitlab_experiment_last_analysis_timestamp_seconds", experiment=key,
                      **{"pass": "guardrails"})  # fmt: skip
        assert when is not None
        assert when > 0
        # Only guardrail metrics were computed: the full export comes with the full pass.
        assert sample("splitlab_experiment_effect", experiment=key, metric="revenue",
                      variant="treatment") is None  # fmt: skip

        for _ in range(2):  # paused: refreshed and exported, the alerts' gauges stay
            automation.refresh_running()
            assert sample("splitlab_experiment_guardrail_violated", **guard) == 1.0
            assert sample("splitlab_experiment_paused_by_analyzer", experiment=key) == 1.0
            assert sample("splitlab_experiment_units", experiment=key, variant="control") > 0
        pauses = [a for a in analyzer.get(f"/experiments/{key}/analyzer-actions").json()["actions"]
                  if a["action"] == "pause"]  # fmt: skip
        assert len(pauses) == 1

        # A person looks, turns auto_stop off and resumes: no longer "waiting for a person";
        # the guardrail alert stays while the harm does.
        patched = assignment.patch(f"/experiments/{key}", json={"auto_stop": False}, headers=ADMIN)
        assert patched.status_code == 200, patched.text
        automation.refresh_running()
        assert sample("splitlab_experiment_paused_by_analyzer", experiment=key) == 0.0
        assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200
        automation.check_guardrails()
        automation.refresh_running()
        assert sample("splitlab_experiment_paused_by_analyzer", experiment=key) == 0.0
        assert sample("splitlab_experiment_guardrail_violated", **guard) == 1.0
        assert assignment.get(f"/experiments/{key}", headers=ADMIN).json()["status"] == "running"

        assert assignment.post(f"/experiments/{key}/stop", headers=ADMIN).status_code == 200
        automation.refresh_running()
        assert sample("splitlab_experiment_guardrail_violated", **guard) is None
        assert sample("splitlab_experiment_paused_by_analyzer", experiment=key) is None
        assert sample("splitlab_analyzer_refresh_failures_total", experiment=key,
                      **{"pass": "full"}) is None  # fmt: skip

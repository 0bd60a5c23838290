"""``splitlab training``: list, show and run (with its progress bar) through a faked trainer
API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.cli import training as training_cli


def model(model_id: int, status: str, progress: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": model_id, "entity": "default", "experiment_key": "exp", "metric": "revenue",
        "kind": "in_experiment", "status": status, "progress": progress, "error": None,
        "task_id": "t1", "attempts": 1, "family": "gradient_boosting", "params": {},
        "features": ["spend"], "rows": 1000, "r2": 0.8, "r2_candidates": {}, "notes": [],
        "duration_seconds": 2.5, "peak_memory_bytes": 300 * 2**20, "schedule_seconds": 900.0,
        "cutoff_at": None, "predicted_units": 1000, "experiment_units": 1000,
        "in_use": status == "done", "queued_at": "2026-12-05T08:00:00+00:00",
        "started_at": None, "trained_at": None, **extra,
    }  # fmt: skip


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []
    polls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            body = json.loads(request.content)
            if body["experiment_key"] == "missing":
                return httpx.Response(404, json={"error": {"message": "no experiment"}})
            return httpx.Response(202, json={"task_id": "t1", "model_ids": [7]})
        if request.url.path == "/models/7":
            polls["n"] += 1
            if polls["n"] < 3:
                return httpx.Response(200, json=model(7, "running", 40.0 * polls["n"]))
            return httpx.Response(200, json=model(7, "done", 100.0))
        return httpx.Response(200, json={"models": [model(7, "done", 100.0)]})

    transport = httpx.MockTransport(handler)

    def fake(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake)
    monkeypatch.setattr(training_cli, "POLL_SECONDS", 0.0)
    monkeypatch.setenv("SPLITLAB_ADMIN_API_KEY", "k")
    monkeypatch.setenv("SPLITLAB_TRAINER_URL", "http://trainer.test")
    return seen


def test_run_follows_the_training_until_done(api: list[httpx.Request]) -> None:
    runner = CliRunner()
    result = runner.invoke(build_app(), ["training", "run", "exp", "--metric", "revenue"])
    assert result.exit_code == 0, result.output
    assert json.loads(api[0].content) == {"experiment_key": "exp", "metric": "revenue"}
    assert api[0].headers["authorization"] == "Bearer k"
    assert str(api[0].url) == "http://trainer.test/train"
    assert [r.url.path for r in api[1:]] == ["/models/7"] * 3
    assert "model 7 revenue in_experiment done" in result.output  # the progress bar
    assert "models [7]" in result.output


def test_list_show_and_errors(api: list[httpx.Request]) -> None:
    runner = CliRunner()
    listed = runner.invoke(
        build_app(), ["training", "list", "--experiment", "exp", "--format", "json"]
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)[0]["id"] == 7
    assert api[0].url.params["experiment_key"] == "exp"
    shown = runner.invoke(build_app(), ["training", "show", "7"])
    assert json.loads(shown.output)[0]["status"] in ("running", "done")
    failed = runner.invoke(build_app(), ["training", "run", "missing"])
    assert failed.exit_code == 1
    assert "404: no experiment" in failed.output

"""``splitlab power`` as a planner: seed 004's case, days from traffic and variants, the
variance reduction of a trained CUPAC model (through a faked trainer API)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app

runner = CliRunner()
SEED_004 = [
    "power", "--metric-type", "proportion", "--baseline", "0.07", "--mde", "0.04",
    "--power", "0.9", "--continuity-correction",
]  # fmt: skip


def power(*extra: str) -> dict[str, Any]:
    result = runner.invoke(build_app(), [*SEED_004, *extra, "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_seed_004_ctr_7_to_11_percent_needs_1124_per_arm() -> None:
    out = power()
    assert out["n_control"] == out["n_treatment"] == 1124
    assert out["mde_absolute"] == pytest.approx(0.04)
    assert out["mde_relative"] == pytest.approx(0.04 / 0.07)
    # Read as a relative change (7% -> 7.28%) it would be a different experiment entirely.
    relative = power("--mde-type", "relative")
    assert relative["n_control"] > 100_000


def test_days_from_traffic_and_variants() -> None:
    assert power("--daily-units", "500")["runtime_days"] == 5.0  # 2,248 units
    three = power("--daily-units", "500", "--variants", "3")
    assert three["total_n"] == 3 * 1124
    assert three["runtime_days"] == 7.0  # 3,372 units
    reduced = power("--daily-units", "500", "--variance-reduction", "0.3")
    assert reduced["n_control"] < 1124
    assert reduced["runtime_days"] <= 4.0


def test_the_readme_example_reads_the_change_as_absolute() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith("splitlab power ")]
    assert lines
    for line in lines:
        assert "--mde-type relative" not in line
        args = line.split()[1:]
        result = runner.invoke(build_app(), [*args, "--format", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["n_per_variant"] == 1124
    assert re.search(r"1,124 units per arm", readme)


@pytest.fixture
def trainer(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []
    models = [
        {"id": 9, "experiment_key": "ranker-v3", "metric": "ctr", "r2": 0.42, "in_use": False},
        {"id": 8, "experiment_key": "ranker-v3", "metric": "ctr", "r2": 0.36, "in_use": True},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("metric") == "ctr":
            return httpx.Response(200, json={"models": models})
        return httpx.Response(200, json={"models": []})

    transport = httpx.MockTransport(handler)

    def fake(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake)
    monkeypatch.setenv("SPLITLAB_TRAINER_URL", "http://trainer.test")
    return seen


def test_cupac_metric_reads_the_model_in_use(trainer: list[httpx.Request]) -> None:
    out = power("--cupac-metric", "ctr", "--cupac-experiment", "ranker-v3")
    assert out["variance_reduction"] == pytest.approx(0.36)
    assert "CUPAC model 8 of ranker-v3" in out["variance_reduction_source"]
    query = trainer[0].url.params
    assert (query["metric"], query["experiment_key"], query["status"]) == (
        "ctr",
        "ranker-v3",
        "done",
    )
    expected = power("--variance-reduction", "0.36")
    assert out["n_control"] == expected["n_control"] < 1124
    table = runner.invoke(build_app(), [*SEED_004, "--cupac-metric", "ctr"])
    assert table.exit_code == 0, table.output
    assert "36.0% (CUPAC model 8" in table.stdout


def test_cupac_errors_name_the_option(trainer: list[httpx.Request]) -> None:
    none = runner.invoke(build_app(), [*SEED_004, "--cupac-metric", "revenue"])
    assert none.exit_code == 2
    assert "--cupac-metric" in none.stderr
    assert "no finished CUPAC model of metric 'revenue'" in none.stderr
    both = runner.invoke(
        build_app(), [*SEED_004, "--cupac-metric", "ctr", "--variance-reduction", "0.2"]
    )
    assert both.exit_code == 2
    assert "either --variance-reduction or --cupac-metric" in both.stderr
    alone = runner.invoke(build_app(), [*SEED_004, "--cupac-experiment", "ranker-v3"])
    assert alone.exit_code == 2
    assert "--cupac-experiment needs --cupac-metric" in alone.stderr
    bad = runner.invoke(build_app(), [*SEED_004, "--daily-units", "0"])
    assert bad.exit_code == 2
    assert "--daily-units must be > 0" in bad.stderr

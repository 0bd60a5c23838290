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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # Each of these once ended in an OverflowError or ZeroDivisionError traceback (exit 1).
        (["--mde", "1e-308"], "--mde must be larger"),
        (["--treatment-ratio", "1e-308"], "--mde must be larger"),
        (["--treatment-ratio", "1e308"], "--treatment-ratio 1e+308 makes the treatment arm"),
        (["--daily-units", "1e-308"], "--daily-units 1e-308 is too small"),
        # Infinite traffic once answered 0 days; an infinite ratio is not a split.
        (["--daily-units", "inf"], "--daily-units must be > 0 and finite"),
        (["--treatment-ratio", "inf"], "--treatment-ratio must be > 0 and finite"),
    ],
)
def test_extreme_inputs_are_errors_naming_the_option(extra: list[str], message: str) -> None:
    result = runner.invoke(build_app(), [*SEED_004, *extra, "--format", "json"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_means_with_extreme_sd_or_mde_are_errors_or_a_testable_arm() -> None:
    mean = ["power", "--metric-type", "mean", "--baseline", "10", "--format", "json"]
    huge_sd = runner.invoke(build_app(), [*mean, "--mde", "1", "--sd", "1e308"])
    assert huge_sd.exit_code == 2, huge_sd.output  # was scipy's "function value at x=inf is NaN"
    assert "--mde must be larger" in huge_sd.stderr
    tiny = runner.invoke(build_app(), [*mean, "--mde", "1e-308", "--sd", "1"])
    assert tiny.exit_code == 2, tiny.output  # was a ZeroDivisionError traceback
    relative = runner.invoke(
        build_app(),
        ["power", "--metric-type", "mean", "--baseline", "1e308", "--mde", "1e10", "--sd", "1",
         "--mde-type", "relative", "--format", "json"],
    )  # fmt: skip
    assert relative.exit_code == 2, relative.output
    assert "--mde must be smaller" in relative.stderr
    # A huge effect once planned 0 units per arm; the results call n < 2 insufficient_data.
    huge = runner.invoke(build_app(), [*mean, "--mde", "1e308", "--sd", "1"])
    assert huge.exit_code == 0, huge.output
    out = json.loads(huge.stdout)
    assert out["n_control"] == out["n_treatment"] == 2
    assert out["total_n"] == 4


@pytest.mark.parametrize(
    ("baseline", "mde", "alternative", "outcome"),
    [
        # One-sided: the alternative gives the direction, the range is checked on that side.
        ("0.03", "0.04", "less", "outside (0, 1)"),  # once n = 76 for a proportion of -0.01
        ("0.98", "-0.04", "greater", "outside (0, 1)"),  # once 'error: math domain error'
        ("0.98", "0.04", "less", None),  # 0.98 -> 0.94 is fine; once refused as 1.02
        ("0.98", "-0.04", "less", None),
    ],
)
def test_one_sided_plans_check_the_proportion_on_their_own_side(
    baseline: str, mde: str, alternative: str, outcome: str | None
) -> None:
    args = ["power", "--metric-type", "proportion", "--baseline", baseline, f"--mde={mde}",
            "--alternative", alternative, "--format", "json"]  # fmt: skip
    result = runner.invoke(build_app(), args)
    if outcome is None:
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["n_control"] == 296
    else:
        assert result.exit_code == 2, result.output
        assert "--mde" in result.stderr or "mde moves" in result.stderr
        assert outcome in result.stderr


def test_a_tiny_alpha_plans_a_finite_sample() -> None:
    # alpha 1e-300 once answered '--mde must be larger: 0.04 is too small' (1 - alpha/2 == 1.0,
    # so the normal quantile was inf); z = 37.1 there, and a plan exists.
    out = json.loads(
        runner.invoke(
            build_app(),
            ["power", "--metric-type", "proportion", "--baseline", "0.07", "--mde", "0.04",
             "--alpha", "1e-300", "--format", "json"],
        ).stdout
    )  # fmt: skip
    assert 10_000 < out["n_control"] < 1_000_000
    loose = power("--alpha", "1e-12")
    assert loose["n_control"] > 1124  # stricter alpha, more units; still finite

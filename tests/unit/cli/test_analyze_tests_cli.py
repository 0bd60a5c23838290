"""``splitlab analyze --test METRIC=TEST --quantile METRIC=Q``: the library's numbers, the
text and HTML reports show them, and a test that does not fit is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import splitlab
from splitlab.cli import build_app

runner = CliRunner()


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    n = 800
    variant = rng.choice(["control", "t1"], n)
    pd.DataFrame(
        {
            "variant": variant,
            "revenue": rng.lognormal(0, 1, n) * np.where(variant == "t1", 1.3, 1.0),
            "ctr": (rng.random(n) < 0.1).astype(int),
        }
    ).to_csv(tmp_path / "exp.csv", index=False)
    return tmp_path / "exp.csv"


ARGS = ["--metric", "revenue", "--metric", "ctr", "--method", "none"]
TESTS = ["--test", "revenue=bootstrap_percentile", "--quantile", "revenue=0.75"]
TESTS += ["--test", "ctr=chi2", "--resamples", "200", "--seed", "3"]


def test_json_is_the_library_answer(csv_file: Path) -> None:
    result = runner.invoke(
        build_app(), ["analyze", str(csv_file), *ARGS, *TESTS, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    expected = splitlab.analyze(
        pd.read_csv(csv_file),
        metrics=["revenue", "ctr"],
        method="none",
        tests={"revenue": "bootstrap_percentile", "ctr": "chi2"},
        quantiles={"revenue": 0.75},
        resamples=200,
        random_state=3,
    ).to_dict()
    assert json.loads(result.stdout)["metrics"] == expected["metrics"]
    revenue = expected["metrics"]["revenue"]
    assert revenue["test"] == "bootstrap_percentile"
    assert revenue["comparisons"]["t1"]["test"]["quantile"] == 0.75


def test_text_and_html_show_the_tests_and_effect_sizes(csv_file: Path, tmp_path: Path) -> None:
    text = runner.invoke(build_app(), ["analyze", str(csv_file), *ARGS, *TESTS])
    assert text.exit_code == 0, text.output
    assert "Tests per metric and effect sizes" in text.stdout
    assert "bootstrap_percentile" in text.stdout
    assert "chi2" in text.stdout
    assert "Cohen's d" in text.stdout
    page = tmp_path / "report.html"
    html = runner.invoke(
        build_app(),
        ["analyze", str(csv_file), *ARGS, *TESTS, "--format", "html", "--output", str(page)],
    )
    assert html.exit_code == 0, html.output
    body = page.read_text()
    assert 'id="metric-tests"' in body
    assert "q0.75 difference (percentile, 200 resamples)" in body
    assert "Hodges-Lehmann" not in body


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--test", "revenue=chi2"], "--test revenue='chi2' needs a 0/1 metric"),
        (
            ["--test", "revenue=bootstrap_bca", "--quantile", "revenue=1.5"],
            "--quantile: quantile must lie in (0, 1)",
        ),
        (["--test", "revenue=median"], "--test revenue must be one of"),
        (["--test", "revenue"], "--test expects NAME=VALUE"),
        (
            ["--test", "revenue=bootstrap_bca", "--resamples", "10"],
            "--resamples must be between 100 and 100,000",
        ),
        # Once unbounded: 100,000,000 resamples ran for minutes before any answer.
        (
            ["--test", "revenue=bootstrap_percentile", "--resamples", "100000000"],
            "--resamples must be between 100 and 100,000 (default 2,000); got 100000000",
        ),
    ],
)
def test_a_test_that_does_not_fit_is_a_clear_error(
    csv_file: Path, extra: list[str], message: str
) -> None:
    result = runner.invoke(build_app(), ["analyze", str(csv_file), *ARGS, *extra])
    assert result.exit_code == 2
    assert message in result.stderr

"""``splitlab analyze`` and ``splitlab power`` through typer's CliRunner."""

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


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "t1"], n)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "variant": variant,
            "revenue": 3 + x + rng.normal(size=n) + 0.3 * (variant == "t1"),
            "revenue_pre": 3 + x + 0.5 * rng.normal(size=n),
            "label": rng.choice(["a", "b"], n),
            "clicks": rng.poisson(2, n),
            "sessions": rng.poisson(4, n) + 1,
        }
    )


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "exp.csv"
    _frame().to_csv(path, index=False)
    return path


def test_json_matches_the_library(csv_file: Path) -> None:
    result = runner.invoke(
        build_app(),
        [
            "analyze",
            str(csv_file),
            "--metric",
            "revenue",
            "--covariate",
            "revenue_pre",
            "--method",
            "cuped",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    expected = splitlab.analyze(
        pd.read_csv(csv_file), metrics=["revenue"], covariates=["revenue_pre"], method="cuped"
    ).to_dict()
    assert out == json.loads(json.dumps(expected))
    assert out["metrics"]["revenue"]["comparisons"]["t1"]["p_value"] < 0.05


def test_parquet_table_and_ratio(tmp_path: Path) -> None:
    path = tmp_path / "exp.parquet"
    _frame().to_parquet(path)
    result = runner.invoke(
        build_app(),
        [
            "analyze",
            str(path),
            "--metric",
            "revenue",
            "--covariate",
            "revenue_pre",
            "--ratio",
            "ctr=clicks/sessions",
            "--method",
            "auto",
            "--cupac-folds",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "revenue (mean)" in result.stdout
    assert "ctr (ratio)" in result.stdout
    assert "decision: t1" in result.stdout


def test_html_report_with_plots(csv_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = runner.invoke(
        build_app(),
        [
            "analyze",
            str(csv_file),
            "--metric",
            "revenue",
            "--covariate",
            "revenue_pre",
            "--method",
            "regression",
            "--format",
            "html",
            "--output",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    html = target.read_text()
    assert html.count("<svg") == 2  # effects plot and the revenue distribution
    assert "variance reduction" in html
    assert "revenue" in html


def test_output_has_the_short_option_of_splitlab_results(csv_file: Path, tmp_path: Path) -> None:
    """README writes `splitlab results KEY --format html -o FILE`; the same `-o` on `splitlab
    analyze` (and `synth`) was "No such option: -o"."""
    target = tmp_path / "short.html"
    result = runner.invoke(
        build_app(),
        ["analyze", str(csv_file), "--metric", "revenue", "--format", "html", "-o", str(target)],
    )
    assert result.exit_code == 0, result.output
    assert "<svg" in target.read_text()
    synth = runner.invoke(
        build_app(),
        ["synth", str(tmp_path / "none.csv"), "-o", str(target), "--unit", "u", "--time", "t",
         "--outcome", "y", "--treated", "a", "--start", "2026-01-01"],
    )  # fmt: skip
    assert "No such option" not in synth.output
    assert "does not exist" in synth.stderr


def test_sequential_weights_and_guardrails(csv_file: Path) -> None:
    result = runner.invoke(
        build_app(),
        [
            "analyze",
            str(csv_file),
            "--metric",
            "revenue",
            "--method",
            "none",
            "--sequential",
            "--weight",
            "control=0.5",
            "--weight",
            "t1=0.5",
            "--guardrail",
            "revenue=0.5",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["sequential"] is True
    assert out["srm"]["expected_weights"] == {"control": 0.5, "t1": 0.5}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "nope"], "metric column(s) ['nope'] not found"),
        (["--metric", "label"], "not numeric"),
        (["--metric", "revenue", "--control", "base"], "--control 'base' is not a value"),
        (["--metric", "revenue", "--alpha", "1.5"], "--alpha must be"),
        (
            [
                "--metric",
                "revenue",
                "--in-experiment-covariate",
                "revenue_pre",
                "--balance-alpha",
                "1",
            ],
            "error: --balance-alpha must be in (0, 1)",
        ),
        (["--metric", "revenue", "--method", "cuped"], "needs --covariate"),
        (["--metric", "revenue", "--weight", "control"], "--weight expects NAME=VALUE"),
        (["--metric", "revenue", "--ratio", "ctr=clicks"], "--ratio 'ctr=clicks'"),
        (["--metric", "revenue", "--variant-col", "arm"], "--variant-col column(s) ['arm']"),
        ([], "--metric is required"),
    ],
)
def test_errors_are_one_line_and_nonzero(csv_file: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(build_app(), ["analyze", str(csv_file), *extra])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["analyze", str(tmp_path / "none.csv"), "--metric", "x"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_a_file_without_rows_says_so(csv_file: Path, tmp_path: Path) -> None:
    """A header-only file (or one whose variant column is empty) said "--control 'control' is
    not a value of the variant column (values: [])", as if the control label were wrong."""
    header_only = tmp_path / "header.csv"
    _frame().head(0).to_csv(header_only, index=False)
    no_variant = tmp_path / "no_variant.csv"
    _frame(n=10).assign(variant=np.nan).to_csv(no_variant, index=False)
    for path, rows in ((header_only, "0 rows"), (no_variant, "10 rows")):
        result = runner.invoke(build_app(), ["analyze", str(path), "--metric", "revenue"])
        assert result.exit_code == 2, result.output
        assert "--variant-col" in result.stderr
        assert f"no value in any of the data's {rows}" in result.stderr
        assert "--control" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (
        "header but no rows"
        in runner.invoke(build_app(), ["analyze", str(header_only), "--metric", "revenue"]).stderr
    )


def test_power_json_has_sizes() -> None:
    result = runner.invoke(
        build_app(),
        [
            "power",
            "--metric-type",
            "proportion",
            "--baseline",
            "0.07",
            "--mde",
            "0.04",
            "--mde-type",
            "relative",
            "--alpha",
            "0.05",
            "--power",
            "0.9",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    expected = splitlab.sample_size(
        0.07, 0.04, metric_type="proportion", mde_type="relative", power=0.9
    )
    assert out["n_per_variant"] == expected.n_per_variant
    assert out["total_n"] == 2 * out["n_per_variant"]
    corrected = runner.invoke(
        build_app(),
        [
            "power",
            "--metric-type",
            "proportion",
            "--baseline",
            "0.07",
            "--mde",
            "0.04",
            "--mde-type",
            "relative",
            "--power",
            "0.9",
            "--continuity-correction",
            "--format",
            "json",
        ],
    )
    assert json.loads(corrected.stdout)["n_per_variant"] > out["n_per_variant"]


def test_power_table_and_errors() -> None:
    table = runner.invoke(
        build_app(),
        [
            "power",
            "--metric-type",
            "mean",
            "--baseline",
            "10",
            "--sd",
            "2",
            "--mde",
            "0.1",
            "--daily-units",
            "1000",
        ],
    )
    assert table.exit_code == 0, table.output
    assert "n per variant" in table.stdout
    assert "runtime (days)" in table.stdout
    bad = runner.invoke(
        build_app(), ["power", "--metric-type", "mean", "--baseline", "10", "--mde", "0.1"]
    )
    assert bad.exit_code == 2
    assert "--sd must be > 0" in bad.stderr
    alpha = runner.invoke(
        build_app(),
        [
            "power",
            "--metric-type",
            "proportion",
            "--baseline",
            "0.1",
            "--mde",
            "0.01",
            "--alpha",
            "0",
        ],
    )
    assert alpha.exit_code == 2
    assert "--alpha must be" in alpha.stderr


def test_periods_from_the_command_line_match_the_library_and_show_in_the_report(
    tmp_path: Path,
) -> None:
    frame = _frame(seed=3)
    frame["period"] = np.arange(len(frame)) >= 1000
    frame["period"] = frame["period"].astype(int)
    rng = np.random.default_rng(4)
    late = frame.period == 1
    frame.loc[late, "variant"] = np.where(rng.random(int(late.sum())) < 0.8, "t1", "control")
    path = tmp_path / "ramp.csv"
    frame.to_csv(path, index=False)
    splits = ["0:control=50", "0:t1=50", "1:control=20", "1:t1=80"]
    options = [a for s in splits for a in ("--period-weight", s)]
    common = ["analyze", str(path), "--metric", "revenue", "--method", "none"]
    answer = runner.invoke(
        build_app(), [*common, "--period-col", "period", *options, "--format", "json"]
    )
    assert answer.exit_code == 0, answer.output
    expected = splitlab.analyze(
        pd.read_csv(path), metrics=["revenue"], method="none", period_col="period",
        period_weights={0: {"control": 50, "t1": 50}, 1: {"control": 20, "t1": 80}},
    ).to_dict()  # fmt: skip
    assert json.loads(answer.output) == expected
    assert [p["weights"] for p in expected["periods"]] == [
        {"control": 0.5, "t1": 0.5},
        {"control": 0.2, "t1": 0.8},
    ]
    html = runner.invoke(build_app(), [*common, "--period-col", "period", *options,
                                       "--format", "html"])  # fmt: skip
    assert html.exit_code == 0, html.output
    assert "Allocation periods" in html.output
    assert "t1 80.0%" in html.output
    missing = runner.invoke(build_app(), [*common, *options])
    assert missing.exit_code == 2
    assert "--period-weight needs --period-col" in missing.output


def test_guardrail_tests_and_power_so_far_show_where_their_inputs_are_given(
    csv_file: Path, tmp_path: Path
) -> None:
    """Monitoring statistics of the analyzer (splitlab.core.analysis.monitoring) in ``splitlab
    analyze``: the guardrail tests with ``--guardrail``, the power so far with ``--mde``."""
    base = ["analyze", str(csv_file), "--metric", "revenue", "--method", "none"]
    plain = json.loads(runner.invoke(build_app(), [*base, "--format", "json"]).stdout)
    assert "guardrails" not in plain
    assert "power_so_far" not in plain

    given = [*base, "--guardrail", "revenue=0.5", "--mde", "0.05"]
    result = runner.invoke(build_app(), [*given, "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    library = splitlab.analyze(
        pd.read_csv(csv_file),
        metrics=["revenue"],
        method="none",
        guardrails={"revenue": 0.5},
        mde=0.05,
    )
    assert [g.variant for g in library.guardrail_tests] == ["t1"]
    assert out["guardrails"] == [g.to_dict() for g in library.guardrail_tests]
    assert out["guardrails"][0]["status"] == "ok"  # revenue rises in t1: no harm
    assert out["mde"] == 0.05
    assert out["power_so_far"] == library.power_so_far
    assert 0 < out["power_so_far"]["t1"] < 1

    table = runner.invoke(build_app(), given)
    assert table.exit_code == 0, table.output
    assert "guardrail revenue / t1" in table.stdout
    assert "power so far (revenue, MDE 5.0%)" in table.stdout
    report = tmp_path / "report.html"
    html = runner.invoke(build_app(), [*given, "--format", "html", "--output", str(report)])
    assert html.exit_code == 0, html.output
    page = report.read_text()
    assert "<h2>Guardrails</h2>" in page
    assert "<h2>Power so far</h2>" in page


def test_an_mde_that_is_not_a_positive_relative_effect_is_refused(csv_file: Path) -> None:
    result = runner.invoke(
        build_app(), ["analyze", str(csv_file), "--metric", "revenue", "--mde", "-0.1"]
    )
    assert result.exit_code == 2
    assert "--mde must be a relative effect > 0" in result.stderr


def test_the_cli_choices_are_the_library_closed_sets() -> None:
    from typing import get_args

    from splitlab.cli import analyze as cli
    from splitlab.core.stats.adjustment import METHODS
    from splitlab.core.stats.comparison import Alternative
    from splitlab.core.stats.multiple import CORRECTIONS

    assert sorted(m.value for m in cli.Method) == sorted(METHODS)
    assert sorted(a.value for a in cli.Alternative) == sorted(get_args(Alternative))
    assert sorted(c.value for c in cli.Correction) == sorted(CORRECTIONS)

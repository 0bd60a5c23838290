"""The always-valid SRM test in ``splitlab.analyze``: JSON, contract, decisions, report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import splitlab
from splitlab.cli import build_app
from splitlab.contracts.analysis import AnalysisBody
from splitlab.core.stats.sequential_srm import (
    period_sequential_srm_test,
    sequential_srm_test,
)
from splitlab.reports.analysis import html_report, summary_tables


def frame(n_control: int, n_treatment: int, period: list[int] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = n_control + n_treatment
    data = pd.DataFrame(
        {
            "variant": ["control"] * n_control + ["treatment"] * n_treatment,
            "revenue": rng.normal(10, 2, n),
        }
    )
    if period is not None:
        data["period"] = period
    return data


def test_analyze_reports_the_sequential_test_beside_the_chi_square() -> None:
    result = splitlab.analyze(frame(5000, 4400), metrics=["revenue"], method="none")
    expected = sequential_srm_test({"control": 5000, "treatment": 4400})
    assert result.srm_sequential == expected
    out = result.to_dict()
    assert out["srm"]["sequential"]["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
    assert out["srm"]["sequential"]["status"] == "mismatch"
    assert out["srm"]["status"] == "mismatch"
    AnalysisBody.model_validate(out)


def test_sequential_horizon_decides_on_the_always_valid_test() -> None:
    # 5000/4600: the chi-square flags it (p 4.5e-5), the always-valid test does not (p 0.024).
    data = frame(5000, 4600)
    fixed = splitlab.analyze(data, metrics=["revenue"], method="none")
    sequential = splitlab.analyze(data, metrics=["revenue"], method="none", sequential=True)
    assert fixed.srm.mismatch
    assert sequential.srm_sequential is not None
    assert not sequential.srm_sequential.mismatch
    assert "sample ratio mismatch" in " ".join(fixed.decisions["treatment"].reasons)
    assert fixed.decisions["treatment"].action == "inconclusive"
    assert "sample ratio mismatch" not in " ".join(sequential.decisions["treatment"].reasons)


def test_periods_test_each_period_against_its_weights() -> None:
    period = [0] * 992 + [1] * 397 + [0] * 1008 + [1] * 1603
    data = frame(1389, 2611, period)
    weights = {0: {"control": 50, "treatment": 50}, 1: {"control": 20, "treatment": 80}}
    result = splitlab.analyze(
        data, metrics=["revenue"], method="none", period_col="period", period_weights=weights
    )
    counts = {0: {"control": 992, "treatment": 1008}, 1: {"control": 397, "treatment": 1603}}
    expected = period_sequential_srm_test(counts, weights, ["control", "treatment"])
    assert result.srm_sequential == expected
    assert expected.status == "ok"


def test_report_shows_the_always_valid_row() -> None:
    result = splitlab.analyze(frame(5000, 4400), metrics=["revenue"], method="none")
    console = Console(file=io.StringIO(), width=200, record=True)
    for table in summary_tables(result):
        console.print(table)
    text = console.export_text()
    assert "SRM (always valid)" in text
    assert "concentrations 100, 1,000, 10,000, 100,000" in text
    page = html_report(result)
    assert "Always-valid SRM check <b>mismatch</b>" in page
    assert "concentrations 100, 1000, 10000, 100000" in page
    # A body without the block (an older analyzer answer) still renders.
    body = result.to_dict()
    del body["srm"]["sequential"]
    assert "Always-valid SRM" not in html_report(body)


def test_cli_json_and_table_carry_the_always_valid_test(tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    frame(5000, 4400).to_csv(path, index=False)
    runner = CliRunner()
    out = runner.invoke(
        build_app(),
        ["analyze", str(path), "--metric", "revenue", "--method", "none", "--format", "json"],
    )
    assert out.exit_code == 0, out.output
    srm = json.loads(out.stdout)["srm"]
    expected = sequential_srm_test({"control": 5000, "treatment": 4400})
    assert srm["sequential"]["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
    assert srm["sequential"]["status"] == "mismatch"
    table = runner.invoke(
        build_app(), ["analyze", str(path), "--metric", "revenue", "--method", "none"]
    )
    assert table.exit_code == 0, table.output
    assert "SRM (always valid)" in table.stdout

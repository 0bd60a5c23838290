from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.core.synth.simulation import factor_panel

runner = CliRunner()


@pytest.fixture
def panel_csv(tmp_path: Path) -> Path:
    path = tmp_path / "panel.csv"
    data = factor_panel(12, 30, 20, effect=6.0, seed=3)
    data = data.rename(columns={"unit": "region", "time": "week", "outcome": "revenue"})
    data.to_csv(path, index=False)
    return path


def _args(path: Path, *extra: str) -> list[str]:
    return [
        "synth",
        str(path),
        "--unit",
        "region",
        "--time",
        "week",
        "--outcome",
        "revenue",
        "--treated",
        "u0",
        "--start",
        "20",
        *extra,
    ]


def test_json_output_has_the_library_shape(panel_csv: Path) -> None:
    result = runner.invoke(build_app(), _args(panel_csv, "--method", "classic", "--format", "json"))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["method"] == "classic"
    assert out["att"] == pytest.approx(6.0, abs=2.5)
    assert len(out["effects"]) == 30


def test_table_output(panel_csv: Path) -> None:
    result = runner.invoke(build_app(), _args(panel_csv, "--method", "classic"))
    assert result.exit_code == 0, result.output
    assert "effect (att)" in result.stdout
    assert "placebo p-value" in result.stdout


def test_html_report_to_a_file_from_parquet(panel_csv: Path, tmp_path: Path) -> None:
    import pandas as pd

    parquet = tmp_path / "panel.parquet"
    pd.read_csv(panel_csv).to_parquet(parquet)
    report = tmp_path / "report.html"
    result = runner.invoke(build_app(), _args(parquet, "--format", "html", "--output", str(report)))
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert '<img alt="actual against counterfactual' in html
    assert "data:image/png;base64," in html
    assert "Donor weights" in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--treated", "atlantis"), "--treated: unit(s) ['atlantis']"),
        (("--start", "300"), "--start: '300' is outside the data"),
        (("--outcome", "sales"), "--outcome: column 'sales' is not in the data"),
    ],
)
def test_errors_are_one_line_and_name_the_option(
    panel_csv: Path, change: tuple[str, ...], message: str
) -> None:
    args = _args(panel_csv)
    for flag, value in zip(change[::2], change[1::2], strict=True):
        index = args.index(flag)
        args[index + 1] = value
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_cells_suggest_the_flag(tmp_path: Path) -> None:
    data = factor_panel(8, 20, 12, seed=1)
    data = data[~((data.unit == "u5") & (data.time == 3))]
    path = tmp_path / "gappy.csv"
    data.to_csv(path, index=False)
    args = [
        "synth",
        str(path),
        "--unit",
        "unit",
        "--time",
        "time",
        "--outcome",
        "outcome",
        "--treated",
        "u0",
        "--start",
        "12",
        "--method",
        "classic",
        "--format",
        "json",
    ]
    failed = runner.invoke(build_app(), args)
    assert failed.exit_code == 2
    assert "--drop-incomplete" in failed.stderr
    dropped = runner.invoke(build_app(), [*args, "--drop-incomplete"])
    assert dropped.exit_code == 0, dropped.output
    assert "u5" not in json.loads(dropped.stdout)["weights"]


def test_missing_file() -> None:
    result = runner.invoke(build_app(), _args(Path("/nonexistent/panel.csv")))
    assert result.exit_code == 2
    assert "FILE: /nonexistent/panel.csv does not exist" in result.stderr

"""Segments from the command line: ``splitlab analyze --segment`` (JSON equal to the library,
table and HTML sections, errors naming the option) and ``splitlab results --segment`` (the
query parameter sent, the section rendered from the analyzer's body)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import splitlab
from splitlab.cli import build_app
from tests.support.fake_services import FakeServices
from tests.unit.cli.test_metrics_cli import Page

runner = CliRunner()


def frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "t1"], n)
    country = rng.choice(["US", "FR", "DE"], n, p=[0.5, 0.3, 0.2])
    country[:30] = "IS"
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "unit_id": [f"u{i}" for i in range(n)],
            "variant": variant,
            "country": country,
            "tenure_days": rng.uniform(0, 400, n),
            "revenue": 3 + x + rng.normal(size=n) + 0.5 * ((variant == "t1") & (country == "US")),
            "revenue_pre": 3 + x + 0.5 * rng.normal(size=n),
        }
    )


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "exp.csv"
    frame().to_csv(path, index=False)
    return path


def test_json_equals_the_library(csv_file: Path) -> None:
    args = ["analyze", str(csv_file), "--metric", "revenue", "--covariate", "revenue_pre",
            "--method", "regression", "--segment", "tenure_days:90,180",
            "--segment-correction", "benjamini-hochberg", "--format", "json"]  # fmt: skip
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)["segments"]
    want = splitlab.analyze(
        pd.read_csv(csv_file), metrics=["revenue"], covariates=["revenue_pre"],
        method="regression", segment="tenure_days:90,180", segment_correction="benjamini-hochberg",
    ).to_dict()["segments"]  # fmt: skip
    assert got == json.loads(json.dumps(want))
    assert list(got["segments"]) == ["<90", "[90, 180)", ">=180"]
    assert got["correction"] == "benjamini-hochberg"


def test_table_and_html_show_the_segments(csv_file: Path, tmp_path: Path) -> None:
    args = ["analyze", str(csv_file), "--metric", "revenue", "--segment", "country"]
    table = runner.invoke(build_app(), args)
    assert table.exit_code == 0, table.output
    assert "revenue by country" in table.stdout
    assert "Cochran's Q" in table.stdout
    assert "segment 'IS' is too small" in table.stdout
    out = tmp_path / "report.html"
    html = runner.invoke(build_app(), [*args, "--format", "html", "--output", str(out)])
    assert html.exit_code == 0, html.output
    page = Page()
    page.feed(out.read_text())
    text = " ".join(page.text)
    assert "Segments " in page.text
    assert "revenue by segment" in page.text
    assert "I²" in text
    assert page.tags.count("svg") == 3  # effects, the distribution, the segments' effects
    for label in ("DE", "FR", "IS", "US"):
        assert label in page.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--segment", "plan"], "--segment attribute 'plan' is not a column"),
        (["--segment", "tenure_days:9,3"], "strictly increasing"),
        (["--segment", "country", "--segment-min-units", "1"], "--segment-min-units must"),
        (["--segment", "unit_id"], "--segment 'unit_id': the attribute 'unit_id' has 3000"),
    ],
)
def test_errors_name_the_option(csv_file: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(build_app(), ["analyze", str(csv_file), "--metric", "revenue", *extra])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_results_sends_the_segment_and_renders_the_section(services: FakeServices) -> None:
    body = splitlab.analyze(frame(), metrics=["revenue"], method="none", segment="country")
    services.on("analyzer", "GET", "/experiments/exp-1/results", body.to_dict())
    result = runner.invoke(build_app(), ["results", "exp-1", "--segment", "country"])
    assert result.exit_code == 0, result.output
    assert services.seen[-1].url.params["segment"] == "country"
    assert services.seen[-1].url.params["segment_correction"] == "holm"
    assert "revenue by country" in result.stdout
    plain = runner.invoke(build_app(), ["results", "exp-1"])
    assert plain.exit_code == 0, plain.output
    assert "segment" not in services.seen[-1].url.params

"""The text tables and the HTML report show CUNOPAC's balance checks and cluster analysis."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from splitlab.core.analysis.analyze import AnalysisResult, CovariateRefusedWarning, analyze
from splitlab.reports.analysis import html_report, summary_tables


def _requests(users: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(users) < 0.5, "control", "treatment")
    per_user = rng.poisson(2.0, users) + 1
    user = np.repeat(np.arange(users), per_user)
    treated = variant[user] == "treatment"
    return pd.DataFrame(
        {
            "user_id": user,
            "variant": variant[user],
            "latency": rng.normal(50, 10, users)[user] + rng.normal(0, 5, user.size),
            "device": rng.normal(0, 1, users)[user],
            "pages": rng.normal(0, 1, user.size) + 0.8 * treated,
        }
    )


@pytest.fixture
def result() -> AnalysisResult:
    with pytest.warns(CovariateRefusedWarning):
        return analyze(
            _requests(),
            metrics=["latency"],
            cluster_col="user_id",
            in_experiment_covariates=["device", "pages"],
            method="cuped",
        )


def test_html_shows_the_checks_and_the_clusters(result: AnalysisResult) -> None:
    page = html_report(result)
    assert "refused: moved by the treatment" in page
    assert "In-experiment covariates (CUNOPAC)" in page
    assert "summed into 800 clusters by <b>user_id</b>" in page
    assert "delta method on the linearised ratio, covariate(s) device" in page
    plain = html_report(analyze(_requests(), metrics=["latency"], method="none"))
    assert "CUNOPAC" not in plain
    assert "clusters by" not in plain


def test_text_tables_show_the_checks_and_the_clusters(result: AnalysisResult) -> None:
    console = Console(record=True, width=400, file=io.StringIO())
    for table in summary_tables(result):
        console.print(table)
    text = console.export_text()
    assert "in-experiment covariate pages: REFUSED (moved by the treatment)" in text
    assert "in-experiment covariate device: used" in text
    assert "summed into 800 user_id clusters" in text

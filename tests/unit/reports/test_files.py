"""``splitlab.reports.files.run_analysis``: an uploaded file's run, as the trainer's worker does it
for the console: the checked frame and spec in, the HTML report and the JSON summary out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import splitlab
from splitlab.core.analysis.files import (
    SyntheticControlSpec,
    VarianceReductionSpec,
    check_frame,
    read_upload,
)
from splitlab.core.synth.simulation import factor_panel
from splitlab.reports.files import run_analysis


def test_variance_reduction_reports_what_analyze_finds() -> None:
    rng = np.random.default_rng(4)
    n = 800
    variant = rng.choice(["control", "treatment"], n)
    pre = rng.normal(10, 2, n)
    frame = pd.DataFrame(
        {"variant": variant, "revenue": pre + rng.normal(0, 1, n) + 0.4 * (variant == "treatment"),
         "revenue_pre": pre}
    )  # fmt: skip
    spec = VarianceReductionSpec("variant", "control", ["revenue"], ["revenue_pre"], "cuped")
    steps: list[str] = []
    page, summary = run_analysis(
        check_frame(frame, spec), spec, lambda step, *_: steps.append(step), title="Upload 7"
    )
    expected = splitlab.analyze(
        frame, variant_col="variant", control="control", metrics=["revenue"],
        covariates=["revenue_pre"], method="cuped",
    ).to_dict()  # fmt: skip
    assert json.dumps(summary, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "Upload 7" in page
    assert steps[-1] == "rendering the report"


def test_synthetic_control_reports_what_synthetic_control_finds() -> None:
    panel = factor_panel(12, 30, 22, effect=3.0, seed=5)
    spec = SyntheticControlSpec("unit", "time", "outcome", "u0", "22")  # the console sends text
    page, summary = run_analysis(check_frame(panel, spec), spec)
    expected = splitlab.synthetic_control(
        panel, unit_col="unit", time_col="time", outcome_col="outcome", treated="u0",
        intervention_time=22,
    ).to_dict()  # fmt: skip
    assert json.dumps(summary, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert summary["att"] > 1.0
    assert page.lstrip().lower().startswith("<!doctype html>")


def test_the_upload_options_are_analyze_s(tmp_path: Path) -> None:
    # Segments, tests per metric, several rows per unit and in-experiment covariates were
    # options of splitlab.analyze and `splitlab analyze`, not of the console's upload.
    rng = np.random.default_rng(5)
    n = 1200
    variant = rng.choice(["control", "treatment"], n)
    device = rng.normal(0, 1, n)
    frame = pd.DataFrame(
        {"variant": variant, "country": rng.choice(["BR", "DE", "US"], n),
         "tenure": rng.uniform(0, 400, n).round(1), "device": device,
         "revenue": 1.5 * device + rng.normal(0, 1, n) + 0.3 * (variant == "treatment")}
    )  # fmt: skip
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    for segment in ("country", "tenure:0,100,200"):
        spec = VarianceReductionSpec(
            "variant", "control", ["revenue"], method="none", segment=segment,
            tests={"revenue": "mann_whitney"}, in_experiment_covariates=["device"],
        )  # fmt: skip
        _, summary = run_analysis(check_frame(read_upload(path), spec), spec)
        expected = splitlab.analyze(
            frame, metrics=["revenue"], method="none", segment=segment,
            tests={"revenue": "mann_whitney"}, in_experiment_covariates=["device"],
        ).to_dict()  # fmt: skip
        assert json.dumps(summary, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert len(summary["segments"]["segments"]) == 3
        assert summary["metrics"]["revenue"]["comparisons"]["treatment"]["test"]["test"] == (
            "mann_whitney"
        )


def test_an_upload_with_several_rows_per_unit_is_analysed_per_unit(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    users = np.repeat(np.arange(300), 4)
    variant = np.where(users % 2 == 0, "control", "treatment")
    frame = pd.DataFrame(
        {"user": users.astype(str), "variant": variant,
         "clicks": rng.poisson(1.0 + 0.2 * (variant == "treatment"))}
    )  # fmt: skip
    path = tmp_path / "sessions.csv"
    frame.to_csv(path, index=False)
    spec = VarianceReductionSpec("variant", "control", ["clicks"], method="none",
                                 cluster_col="user")  # fmt: skip
    _, summary = run_analysis(check_frame(read_upload(path), spec), spec)
    expected = splitlab.analyze(frame, metrics=["clicks"], method="none", cluster_col="user")
    assert json.dumps(summary, sort_keys=True) == json.dumps(expected.to_dict(), sort_keys=True)
    assert summary["cluster"] == {"column": "user", "clusters": 300, "rows": 1200}

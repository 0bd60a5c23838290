"""``splitlab.reports.files.run_analysis``: an uploaded file's run, as the trainer's worker does it
for the console: the checked frame and spec in, the HTML report and the JSON summary out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

import splitlab
from splitlab.core.analysis.files import SyntheticControlSpec, VarianceReductionSpec, check_frame
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

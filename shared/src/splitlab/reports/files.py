"""An uploaded file's analysis run and its report, as the web console asks for them: the checked
frame and spec of ``splitlab.core.analysis.files`` in, the HTML report (the same templates as
``splitlab analyze --format html`` and ``splitlab synth --format html``) and the JSON summary
out. It lives with the reports, not in the pure core, because it renders them."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from splitlab.core.analysis.files import (
    AnalysisSpec,
    VarianceReductionSpec,
    intervention_time,
)

if TYPE_CHECKING:
    import pandas as pd

    from splitlab.core.stats.cupac import Progress

__all__ = ["run_analysis"]


def run_analysis(
    frame: pd.DataFrame, spec: AnalysisSpec, progress: Progress | None = None, title: str = ""
) -> tuple[str, dict[str, Any]]:
    """Run the analysis on a checked frame: (the HTML report, the JSON summary)."""
    if isinstance(spec, VarianceReductionSpec):
        from splitlab.core.analysis.analyze import analyze
        from splitlab.reports.analysis import html_report

        result = analyze(
            frame,
            variant_col=spec.variant_col,
            control=spec.control,
            metrics=spec.metrics,
            covariates=spec.covariates or None,
            method=spec.method,
            progress=progress,
            segment=spec.segment,
            tests=spec.tests or None,
            cluster_col=spec.cluster_col,
            in_experiment_covariates=spec.in_experiment_covariates,
        )
        if progress is not None:
            progress("rendering the report", 1, 1)
        columns = {c: frame[c].to_numpy() for c in (spec.variant_col, *spec.metrics)}
        page = html_report(result, columns, spec.variant_col, title=title or "SplitLab analysis")
        return page, result.to_dict()
    from splitlab.core.synth import synthetic_control
    from splitlab.reports.synth import html_report as synth_report

    if progress is not None:
        progress("fitting the synthetic control and its placebos", 0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library warnings are in the result's notes
        fitted = synthetic_control(
            frame,
            unit_col=spec.unit_col,
            time_col=spec.time_col,
            outcome_col=spec.outcome_col,
            treated=spec.treated,
            intervention_time=intervention_time(frame, spec),
        )
    if progress is not None:
        progress("rendering the report", 1, 1)
    return synth_report(fitted), fitted.to_dict()

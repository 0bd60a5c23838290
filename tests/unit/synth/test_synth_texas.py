"""Issue 21's panel: Texas prison construction (Cunningham's Mixtape, shipped in causaldata).

Eight pre-periods (1985-1992), fifty donors, Black male prisoners in the tens of thousands with
a strong upward trend; the classic method finds about +20,000 a year after 1993. Before the
fix, ``auto`` chose a ridge forecast that fit the pre-period to an RMSPE of 1 with a
coefficient of 201 on North Dakota and reported +3,850, with no warning.
"""

from __future__ import annotations

import pytest
from markupsafe import escape

from splitlab.core.synth import SyntheticControlResult, synthetic_control
from splitlab.core.synth.diagnostics import EXTREME_WEIGHT
from splitlab.reports.synth import html_report, p_value_explanation, summary_table

from .public_panels import PublicPanel, load_texas


@pytest.fixture(scope="module")
def texas() -> PublicPanel:
    return load_texas()


def _fit(panel: PublicPanel, method: str, placebo: bool = True) -> SyntheticControlResult:
    return synthetic_control(
        panel.data,
        unit_col="unit",
        time_col="time",
        outcome_col="outcome",
        treated=panel.treated,
        intervention_time=panel.intervention_time,
        method=method,
        placebo=placebo,
    )


def test_panel_is_the_issue_one(texas: PublicPanel) -> None:
    assert texas.data["unit"].nunique() == 51
    assert sorted(texas.data["time"].unique())[:9][-1] == 1993
    assert float(texas.data["outcome"].max()) > 50_000


def test_auto_keeps_the_convex_method_and_the_published_size_of_effect(
    texas: PublicPanel,
) -> None:
    res = _fit(texas, "auto", placebo=False)
    assert res.method == "classic"
    assert 18_000 < res.att < 24_000  # classic: +21,013
    assert res.selection is not None
    assert res.selection.startswith("auto chose classic: held-out RMSPE over 4 rolling origins")
    assert max(abs(w) for w in res.weights.values()) <= 1.0


def test_forecast_on_the_issue_panel_warns_about_its_coefficients(texas: PublicPanel) -> None:
    res = _fit(texas, "forecast", placebo=False)
    largest = max(abs(w) for w in res.weights.values())
    assert largest > EXTREME_WEIGHT
    extreme = [w for w in res.warnings if w.startswith("extreme donor coefficients (forecast)")]
    assert len(extreme) == 1
    assert "North Dakota" in extreme[0]


def test_report_explains_why_the_p_value_differs_between_methods(texas: PublicPanel) -> None:
    p_values = {}
    for method in ("classic", "augmented"):
        res = _fit(texas, method)
        explanation = p_value_explanation(res)
        assert explanation is not None
        treated_ratio = res.post_rmspe / res.pre_rmspe
        at_least = sum(1 for r in res.placebos if r.ratio >= treated_ratio)
        assert explanation.startswith(f"p = (1 + {at_least}) / (50 + 1)")
        assert res.p_value == pytest.approx((1 + at_least) / 51)
        assert "differ between methods on the same panel" in explanation
        assert str(escape(explanation)) in html_report(res)  # autoescaped, as every field
        assert summary_table(res).row_count > 0
        p_values[method] = res.p_value
    assert p_values["classic"] > 0.1 > p_values["augmented"]  # 0.176 and 0.039

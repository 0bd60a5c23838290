"""The shared two-arm comparison: intervals, alternatives, degenerate data."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from splitlab.core.stats.comparison import ArmEstimate, compare, satterthwaite


def arm(n: int, mean: float, variance: float, dof: float | None = None) -> ArmEstimate:
    return ArmEstimate(n, mean, variance, n - 1 if dof is None else dof, mean, variance)


def test_z_when_degrees_of_freedom_are_infinite() -> None:
    c = compare(arm(100, 1.0, 0.01, math.inf), arm(100, 1.05, 0.01, math.inf))
    z = 0.05 / math.sqrt(0.02)
    assert c.df == math.inf
    assert c.p_value == pytest.approx(2 * sps.norm.sf(z), rel=1e-12)
    assert c.ci_lower == pytest.approx(0.05 - sps.norm.ppf(0.975) * math.sqrt(0.02), rel=1e-12)


def test_relative_effect_by_delta_method() -> None:
    c = compare(arm(100, 2.0, 0.04, math.inf), arm(100, 2.2, 0.09, math.inf))
    assert c.rel_effect == pytest.approx(0.1)
    expected_var = (0.09 + 1.1**2 * 0.04) / 4.0
    assert c.rel_se == pytest.approx(math.sqrt(expected_var))


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_intervals_are_half_open(alternative: str) -> None:
    c = compare(arm(50, 0.0, 0.1), arm(50, 0.3, 0.1), alternative=alternative)
    if alternative == "greater":
        assert c.ci_upper == math.inf
        assert c.p_value < 0.5
    else:
        assert c.ci_lower == -math.inf
        assert c.p_value > 0.5


def test_degenerate_inputs_give_nan_and_status() -> None:
    c = compare(arm(1, 1.0, math.nan), arm(10, 1.0, 0.1))
    assert math.isnan(c.p_value)
    assert c.status.startswith("insufficient_data")
    z = compare(arm(10, 1.0, 0.0), arm(10, 1.0, 0.0))
    assert math.isnan(z.ci_lower)
    assert z.status == "degenerate: zero variance"
    zero = compare(arm(10, 0.0, 0.1), arm(10, 1.0, 0.1))
    assert math.isnan(zero.rel_effect)
    assert zero.status == "ok"


def test_satterthwaite_matches_equal_case() -> None:
    assert satterthwaite((1.0, 1.0), (9.0, 9.0)) == pytest.approx(18.0)
    assert satterthwaite((1.0, 1.0), (math.inf, math.inf)) == math.inf


@pytest.mark.parametrize(
    ("alpha", "alternative"), [(0.0, "two-sided"), (1.5, "two-sided"), (0.05, "both")]
)
def test_bad_arguments(alpha: float, alternative: str) -> None:
    with pytest.raises(ValueError, match=r"alpha|alternative"):
        compare(arm(10, 0, 1), arm(10, 0, 1), alpha, alternative)

"""Two-proportion z test against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from splitlab.core.stats.proportions import (
    proportion_estimate,
    proportion_from_moments,
    two_proportion_z,
)
from splitlab.core.stats.sufficient import Moments


def test_golden_numbers() -> None:
    r = two_proportion_z(30, 500, 45, 500)
    # statsmodels proportions_ztest([45, 30], [500, 500]) -> z = 1.8009006755629924
    assert r.p_value == pytest.approx(0.07171853650843411, rel=1e-10)
    assert r.effect == pytest.approx(0.03)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_matches_statsmodels(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    n_c, n_t = (int(v) for v in rng.integers(50, 5000, size=2))
    s_c = int(rng.binomial(n_c, rng.uniform(0.02, 0.5)))
    s_t = int(rng.binomial(n_t, rng.uniform(0.02, 0.5)))
    ours = two_proportion_z(s_c, n_c, s_t, n_t, 0.05, alternative)
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    _, p = proportions_ztest([s_t, s_c], [n_t, n_c], alternative=sm_alt)
    assert ours.p_value == pytest.approx(p, rel=1e-9)
    if alternative == "two-sided":
        low, high = confint_proportions_2indep(s_t, n_t, s_c, n_c, method="wald")
        assert ours.ci_lower == pytest.approx(low, rel=1e-9)
        assert ours.ci_upper == pytest.approx(high, rel=1e-9)


def test_from_moments_equals_counts() -> None:
    values = np.array([0, 1, 1, 0, 0, 1, 0, 0], dtype=float)
    est = proportion_from_moments(Moments.from_arrays(values))
    assert est.mean == pytest.approx(3 / 8)
    assert est.variance == pytest.approx(3 / 8 * 5 / 8 / 8)
    assert math.isinf(est.dof)


def test_degenerate_and_bad_input() -> None:
    r = two_proportion_z(0, 100, 0, 100)
    assert math.isnan(r.p_value)
    assert r.status.startswith("degenerate")
    with pytest.raises(ValueError, match="successes"):
        proportion_estimate(11, 10)

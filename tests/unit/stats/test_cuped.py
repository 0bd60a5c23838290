"""CUPED against OLS with robust (HC) errors on randomized inputs."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from splitlab.core.stats.comparison import compare
from splitlab.core.stats.cuped import cuped_estimates, cuped_theta
from splitlab.core.stats.sufficient import Moments


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2000, 6000))
    treated = rng.random(n) < rng.uniform(0.3, 0.7)
    x = rng.gamma(2.0, 3.0, n) + rng.uniform(-100, 100)
    y = rng.uniform(0.2, 2.0) * x + rng.normal(0, rng.uniform(0.5, 3), n) + 0.3 * treated
    return y, x, treated


@pytest.mark.parametrize("seed", range(12))
def test_cuped_effect_and_ci_match_ols_with_robust_errors(seed: int) -> None:
    y, x, treated = _data(seed)
    arms = [
        Moments.from_arrays(y[~treated], x[~treated]),
        Moments.from_arrays(y[treated], x[treated]),
    ]
    control, treatment = cuped_estimates(arms)
    ours = compare(control, treatment)

    design = sm.add_constant(np.column_stack([treated.astype(float), x]))
    fit = sm.OLS(y, design).fit(cov_type="HC2")
    # The point estimate is the regression's treatment coefficient exactly.
    assert ours.effect == pytest.approx(fit.params[1], rel=1e-9)
    assert cuped_theta(arms) == pytest.approx(fit.params[2], rel=1e-9)
    # The CUPED variance is the HC variance up to O(1/n) terms (theta treated as known).
    assert ours.se == pytest.approx(fit.bse[1], rel=1e-2)
    low, high = fit.conf_int(alpha=0.05)[1]
    width = high - low
    assert ours.ci_lower == pytest.approx(low, abs=0.01 * width)
    assert ours.ci_upper == pytest.approx(high, abs=0.01 * width)


def test_variance_reduction_is_squared_correlation() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=20_000)
    y = 0.8 * x + 0.6 * rng.normal(size=20_000)  # corr^2 = 0.64
    half = x.size // 2
    arms = [Moments.from_arrays(y[:half], x[:half]), Moments.from_arrays(y[half:], x[half:])]
    c, t = cuped_estimates(arms)
    reduction = compare(c, t).variance_reduction
    assert reduction == pytest.approx(0.64, abs=0.02)


def test_constant_covariate_means_no_adjustment() -> None:
    y = np.arange(10.0)
    arms = [Moments.from_arrays(y[:5], np.ones(5)), Moments.from_arrays(y[5:], np.ones(5))]
    assert cuped_theta(arms) == 0.0
    c, _t = cuped_estimates(arms)
    assert c.variance == pytest.approx(c.variance_unadjusted)
    with pytest.raises(ValueError, match="arms"):
        cuped_estimates([])

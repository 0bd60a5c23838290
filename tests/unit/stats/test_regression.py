"""Lin regression adjustment against statsmodels (interacted OLS, HC errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from splitlab.core.stats.comparison import compare
from splitlab.core.stats.regression import lin_estimates, residual_variance
from splitlab.core.stats.sufficient import Moments


@pytest.mark.parametrize("seed", range(10))
def test_lin_matches_interacted_ols(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, p = int(rng.integers(3000, 6000)), int(rng.integers(1, 4))
    treated = rng.random(n) < 0.5
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, p) + rng.uniform(-20, 20, p)
    slopes = rng.normal(size=p)
    y = x @ slopes + treated * (0.2 + x[:, 0] * 0.3) + rng.normal(size=n) * (1 + treated)
    data = np.column_stack([y, x])
    arms = [Moments.from_arrays(data[~treated]), Moments.from_arrays(data[treated])]
    c, t = lin_estimates(arms)
    ours = compare(c, t)

    xc = x - x.mean(axis=0)
    design = sm.add_constant(np.column_stack([treated, xc, xc * treated[:, None]]).astype(float))
    fit = sm.OLS(y, design).fit(cov_type="HC2")
    assert ours.effect == pytest.approx(fit.params[1], rel=1e-8, abs=1e-10)
    assert ours.se == pytest.approx(fit.bse[1], rel=1e-2)


def test_residual_variance_and_collinear_covariates() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=1000)
    y = 2 * x + rng.normal(size=1000)
    m = Moments.from_arrays(y, x, 2 * x, np.zeros(1000))  # duplicate and constant columns
    assert residual_variance(m, 0, [1, 2, 3]) == pytest.approx(
        residual_variance(m.select([0, 1]), 0, [1]), rel=1e-9
    )
    est = lin_estimates([m, m])
    assert all(math.isfinite(e.variance) for e in est)


def test_too_few_units_for_covariates_is_nan() -> None:
    m = Moments.from_arrays([1.0, 2.0], [1.0, 3.0], [0.0, 5.0])
    est = lin_estimates([m, m])
    assert math.isnan(est[0].variance)
    with pytest.raises(ValueError, match="covariates"):
        lin_estimates([m.select([0]), m.select([0])])

"""Mann-Whitney against scipy; bootstrap against the normal interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from splitlab.core.stats.nonparametric import bootstrap_ci, mann_whitney


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_matches_scipy(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    c = np.round(rng.exponential(1.0, int(rng.integers(20, 300))), 1)  # ties on purpose
    t = np.round(rng.exponential(1.2, int(rng.integers(20, 300))), 1)
    ours = mann_whitney(c, t, alternative)
    ref = sps.mannwhitneyu(t, c, alternative=alternative, method="asymptotic")
    assert ours.u == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_mann_whitney_degenerate() -> None:
    assert mann_whitney([1.0, 1.0], [1.0, 1.0]).status.startswith("degenerate")
    assert mann_whitney([], [1.0]).status.startswith("insufficient")
    with pytest.raises(ValueError, match="control"):
        mann_whitney([np.nan], [1.0])


def test_bootstrap_agrees_with_normal_interval() -> None:
    rng = np.random.default_rng(0)
    c, t = rng.normal(0, 1, 800), rng.normal(0.2, 1, 800)
    boot = bootstrap_ci(c, t, n_resamples=1000, random_state=1)
    se = math.sqrt(c.var(ddof=1) / 800 + t.var(ddof=1) / 800)
    assert boot.se == pytest.approx(se, rel=0.1)
    assert boot.ci_lower == pytest.approx(boot.effect - 1.96 * se, abs=0.25 * se)
    assert boot.ci_upper == pytest.approx(boot.effect + 1.96 * se, abs=0.25 * se)


def test_bootstrap_any_statistic_and_bad_arguments() -> None:
    rng = np.random.default_rng(1)
    c, t = rng.exponential(1, 300), rng.exponential(2, 300)
    med = bootstrap_ci(
        c, t, statistic=lambda a, b: float(np.median(b) - np.median(a)), n_resamples=300
    )
    assert med.ci_lower < med.effect < med.ci_upper
    assert med.ci_lower > 0
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(c, t, n_resamples=10)
    assert math.isnan(bootstrap_ci([1.0], t).ci_lower)

"""Welch's t against scipy on randomized inputs (p-values and CIs to 1e-8 relative)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from splitlab.core.stats.means import welch
from splitlab.core.stats.sufficient import Moments


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_matches_scipy(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    n_c, n_t = rng.integers(3, 400, size=2)
    c = rng.lognormal(rng.normal(), rng.uniform(0.2, 1.5), n_c) + rng.uniform(-50, 50)
    t = rng.lognormal(rng.normal(), rng.uniform(0.2, 1.5), n_t) + rng.uniform(-50, 50)
    alpha = float(rng.uniform(0.01, 0.2))
    ours = welch(Moments.from_arrays(c), Moments.from_arrays(t), alpha, alternative)
    ref = sps.ttest_ind(t, c, equal_var=False, alternative=alternative)
    ci = ref.confidence_interval(confidence_level=1 - alpha)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    assert ours.df == pytest.approx(ref.df, rel=1e-10)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
    for mine, theirs in ((ours.ci_lower, ci.low), (ours.ci_upper, ci.high)):
        if np.isinf(theirs):
            assert mine == theirs
        else:
            assert mine == pytest.approx(theirs, rel=1e-8)


def test_welch_golden_numbers() -> None:
    c = Moments.from_arrays([1.0, 2.0, 3.0, 4.0])
    t = Moments.from_arrays([2.0, 4.0, 6.0, 9.0, 11.0])
    r = welch(c, t)
    # scipy.stats.ttest_ind([2,4,6,9,11], [1,2,3,4], equal_var=False)
    assert r.effect == pytest.approx(3.9)
    assert r.statistic == pytest.approx(2.2234347239869643, rel=1e-12)
    assert r.p_value == pytest.approx(0.07491274505659241, rel=1e-10)
    assert r.df == pytest.approx(5.181755699189826, rel=1e-12)


def test_welch_degenerate_arm() -> None:
    r = welch(Moments.from_arrays([1.0]), Moments.from_arrays([1.0, 2.0, 3.0]))
    assert np.isnan(r.p_value)
    assert r.status != "ok"

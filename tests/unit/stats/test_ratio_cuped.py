"""Ratio CUPED against a per-unit reference computed by hand with numpy (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab.core.stats.comparison import compare
from splitlab.core.stats.ratio import ratio_estimate
from splitlab.core.stats.ratio_cuped import ratio_cuped_estimates, ratio_cuped_theta
from splitlab.core.stats.sufficient import Moments


def _units(seed: int, arms: int = 2, spread: float = 20.0) -> list[np.ndarray]:
    """Per arm: rows [clicks, sessions, clicks_pre, sessions_pre, feature] per unit."""
    rng = np.random.default_rng(seed)
    out = []
    for a in range(arms):
        n = int(rng.integers(800, 3000))
        activity = rng.gamma(2.0, 2.0, n)
        sessions = rng.poisson(activity) + 1.0
        sessions_pre = rng.poisson(activity) + 1.0
        ctr = rng.beta(2, spread, n)
        clicks = rng.binomial(sessions.astype(int), np.clip(ctr * (1 + 0.05 * a), 0, 1))
        clicks_pre = rng.binomial(sessions_pre.astype(int), ctr)
        feature = activity + rng.normal(0, 1, n) + 1000.0
        out.append(np.column_stack([clicks, sessions, clicks_pre, sessions_pre, feature]))
    return out


def _reference(units: list[np.ndarray], xs: list[int]) -> list[tuple[float, float, float]]:
    """Per arm (adjusted ratio, its variance, theta) from per-unit values, by hand."""
    ratios = [u[:, 0].sum() / u[:, 1].sum() for u in units]
    lin = [(u[:, 0] - r * u[:, 1]) / u[:, 1].mean() for u, r in zip(units, ratios, strict=True)]
    # Pooled theta: OLS of L on X with one intercept per arm (within-arm slopes pooled).
    rows = sum(len(u) for u in units)
    design = np.zeros((rows, len(units) + len(xs)))
    start = 0
    for a, u in enumerate(units):
        design[start : start + len(u), a] = 1.0
        design[start : start + len(u), len(units) :] = u[:, xs]
        start += len(u)
    coef = np.linalg.lstsq(design, np.concatenate(lin), rcond=None)[0]
    theta = coef[len(units) :]
    overall = np.concatenate([u[:, xs] for u in units]).mean(axis=0)
    out = []
    for u, r, values in zip(units, ratios, lin, strict=True):
        adjusted = values - u[:, xs] @ theta
        variance = adjusted.var(ddof=1) / len(u)
        out.append((r - float(theta @ (u[:, xs].mean(axis=0) - overall)), variance, theta))
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("xs", [[2, 3], [4], [2, 3, 4]])
def test_ratio_cuped_matches_per_unit_reference(seed: int, xs: list[int]) -> None:
    units = _units(seed, arms=2 + seed % 2)
    arms = [Moments.from_arrays(u) for u in units]
    ours = ratio_cuped_estimates(arms, xs)
    reference = _reference(units, xs)
    np.testing.assert_allclose(ratio_cuped_theta(arms, xs), reference[0][2], rtol=1e-9)
    for est, (mean, variance, _), u in zip(ours, reference, units, strict=True):
        assert est.mean == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert est.variance == pytest.approx(variance, rel=1e-9)
        assert est.n == len(u)
        assert est.dof == len(u) - 1
        # The unadjusted fields are the plain delta-method ratio.
        plain = ratio_estimate(Moments.from_arrays(u[:, :2]))
        assert est.mean_unadjusted == pytest.approx(plain.mean, rel=1e-12)
        assert est.variance_unadjusted == pytest.approx(plain.variance, rel=1e-12)


def test_pre_period_parts_reduce_the_variance() -> None:
    # Units differ a lot in click-through (a persistent trait): the pre-period ratio parts
    # predict the in-experiment ones.
    units = _units(3, spread=2.0)
    arms = [Moments.from_arrays(u) for u in units]
    control, treatment = ratio_cuped_estimates(arms, [2, 3])
    adjusted = compare(control, treatment)
    plain = compare(ratio_estimate(arms[0]), ratio_estimate(arms[1]))
    assert adjusted.variance < 0.8 * plain.variance
    assert adjusted.variance_unadjusted == pytest.approx(plain.variance, rel=1e-12)


def test_zero_theta_is_the_plain_delta_method() -> None:
    arms = [Moments.from_arrays(u) for u in _units(5)]
    for est, m in zip(ratio_cuped_estimates(arms, [4], theta=[0.0]), arms, strict=True):
        plain = ratio_estimate(m)
        assert est.mean == pytest.approx(plain.mean, rel=1e-12)
        assert est.variance == pytest.approx(plain.variance, rel=1e-9)


def test_golden_numbers() -> None:
    # Two arms of four units: [num, den, x].
    control = Moments.from_arrays(
        np.array([[2.0, 4.0, 1.0], [3.0, 5.0, 2.0], [1.0, 3.0, 0.0], [4.0, 6.0, 3.0]])
    )
    treatment = Moments.from_arrays(
        np.array([[3.0, 4.0, 1.0], [5.0, 6.0, 2.0], [2.0, 3.0, 1.0], [4.0, 5.0, 2.0]])
    )
    c, t = ratio_cuped_estimates([control, treatment], [2])
    units = [
        np.array([[2.0, 4.0, 1.0], [3.0, 5.0, 2.0], [1.0, 3.0, 0.0], [4.0, 6.0, 3.0]]),
        np.array([[3.0, 4.0, 1.0], [5.0, 6.0, 2.0], [2.0, 3.0, 1.0], [4.0, 5.0, 2.0]]),
    ]
    ref = _reference(units, [2])
    assert c.mean == pytest.approx(ref[0][0], rel=1e-12)
    assert t.mean == pytest.approx(ref[1][0], rel=1e-12)
    assert c.mean == pytest.approx(0.5555555555555556 - ref[0][2][0] * (1.5 - 1.5), rel=1e-12)


def test_degenerate_arms_fall_back_to_the_plain_estimate() -> None:
    empty = Moments.empty(3)
    one = Moments.from_arrays(np.array([[1.0, 2.0, 3.0]]))
    plain = Moments.from_arrays(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 1.0], [0.0, 1.0, 2.0]]))
    out = ratio_cuped_estimates([plain, one, empty], [2])
    assert out[1].n == 1
    assert np.isnan(out[1].variance)
    assert out[2].n == 0
    assert np.isnan(out[2].mean)
    with pytest.raises(ValueError, match="covariates"):
        ratio_cuped_estimates([plain, plain], [])
    with pytest.raises(ValueError, match="numerator or denominator"):
        ratio_cuped_estimates([plain, plain], [1])

"""Gaussian chance to beat control."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from splitlab.core.stats.bayes import gaussian_posterior


def test_flat_prior() -> None:
    r = gaussian_posterior(0.1, 0.05)
    assert r.chance_to_beat_control == pytest.approx(sps.norm.cdf(2.0))
    assert gaussian_posterior(
        0.1, 0.05, lower_is_better=True
    ).chance_to_beat_control == pytest.approx(sps.norm.cdf(-2.0))


def test_expected_loss_by_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(0.02, 0.05, 2_000_000)
    r = gaussian_posterior(0.02, 0.05)
    assert r.expected_loss == pytest.approx(np.maximum(0, -draws).mean(), rel=5e-3)


def test_prior_shrinks() -> None:
    r = gaussian_posterior(1.0, 1.0, prior_mean=0.0, prior_sd=1.0)
    assert r.posterior_mean == pytest.approx(0.5)
    assert r.posterior_sd == pytest.approx(math.sqrt(0.5))
    assert math.isnan(gaussian_posterior(1.0, 0.0).chance_to_beat_control)
    with pytest.raises(ValueError, match="prior_sd"):
        gaussian_posterior(1.0, 1.0, prior_sd=0.0)

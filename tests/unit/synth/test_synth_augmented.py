from __future__ import annotations

import numpy as np
import pytest

from splitlab.core.synth.augmented import augmented_weights, choose_lambda, fit_augmented
from splitlab.core.synth.counterfactual import Inputs
from splitlab.core.synth.weights import fit_classic


def _factor_donors(n_periods: int, n_donors: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = np.cumsum(rng.normal(0, 1, (n_periods, 2)), axis=0)
    return factors @ rng.normal(1, 0.5, (2, n_donors)) + rng.normal(0, 0.3, (n_periods, n_donors))


def test_stable_when_donors_outnumber_pre_periods() -> None:
    donors = _factor_donors(14, 60, seed=0)
    y_pre = donors[:8, :5].mean(axis=1) + 3.0
    fit = fit_augmented(Inputs(y_pre=y_pre, donors=donors, n_pre=8))
    assert np.all(np.isfinite(fit.values))
    assert fit.weights.sum() == pytest.approx(1.0, abs=1e-8)
    # the same problem with one more donor barely moves the counterfactual
    more = np.column_stack([donors, donors[:, 0] + 0.01])
    again = fit_augmented(Inputs(y_pre=y_pre, donors=more, n_pre=8))
    assert np.max(np.abs(again.values - fit.values)) < 0.5


def test_level_shift_is_absorbed_by_the_intercept() -> None:
    donors = _factor_donors(30, 10, seed=1)
    truth = donors[:, :3].mean(axis=1) + 50.0  # far above every donor
    inputs = Inputs(y_pre=truth[:20], donors=donors, n_pre=20)
    aug = fit_augmented(inputs)
    classic = fit_classic(inputs)
    aug_error = np.sqrt(np.mean((aug.values[20:] - truth[20:]) ** 2))
    classic_error = np.sqrt(np.mean((classic.values[20:] - truth[20:]) ** 2))
    assert aug_error < 1.0
    assert classic_error > 10 * aug_error


def test_infinite_lambda_is_plain_penalised_sc() -> None:
    donors = _factor_donors(20, 6, seed=2)
    w_sc, w_aug, _ = augmented_weights(donors[:15], donors[:15, 0] + 1, 5, float("inf"))
    np.testing.assert_array_equal(w_sc, w_aug)
    assert w_sc.min() >= 0


def test_lambda_is_chosen_from_the_grid_or_inf() -> None:
    donors = _factor_donors(20, 6, seed=3)
    lam = choose_lambda(donors[:15], donors[:15, 1] * 1.5, 5)
    assert lam == float("inf") or 1e-3 <= lam <= 1e3

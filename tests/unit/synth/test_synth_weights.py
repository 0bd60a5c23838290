from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from splitlab.core.synth.counterfactual import Inputs
from splitlab.core.synth.weights import fit_classic, simplex_weights


def _slsqp(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = A.shape[1]
    found = optimize.minimize(
        lambda w: float(np.sum((A @ w - b) ** 2)),
        np.full(n, 1 / n),
        jac=lambda w: 2 * A.T @ (A @ w - b),
        bounds=[(0, 1)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    return np.asarray(found.x)


@pytest.mark.parametrize("seed", range(5))
def test_simplex_weights_match_a_general_solver(seed: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.normal(10, 3, (15, 8))
    b = rng.normal(10, 3, 15)
    w = simplex_weights(A, b)
    assert w.min() >= 0
    assert w.sum() == pytest.approx(1.0, abs=1e-10)
    reference = _slsqp(A, b)
    loss = float(np.sum((A @ w - b) ** 2))
    assert loss <= float(np.sum((A @ reference - b) ** 2)) * (1 + 1e-6) + 1e-9


def test_simplex_weights_recover_an_exact_convex_combination() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(0, 1, (20, 6))
    truth = np.array([0.5, 0.0, 0.3, 0.0, 0.2, 0.0])
    np.testing.assert_allclose(simplex_weights(A, A @ truth), truth, atol=1e-6)


def test_ridge_spreads_the_weights() -> None:
    rng = np.random.default_rng(2)
    A = rng.normal(0, 1, (5, 30))
    b = A[:, 0]
    plain = simplex_weights(A, b)
    spread = simplex_weights(A, b, ridge=100.0)
    assert np.sum(spread**2) < np.sum(plain**2)


def test_classic_with_covariates_uses_nested_importance() -> None:
    rng = np.random.default_rng(3)
    n_pre, n_donors = 12, 6
    donors = np.cumsum(rng.normal(0, 1, (16, n_donors)), axis=0) + 20
    truth = np.array([0.7, 0.3, 0, 0, 0, 0])
    covariates = rng.normal(5, 2, (2, n_donors))
    inputs = Inputs(
        y_pre=donors[:n_pre] @ truth,
        donors=donors,
        n_pre=n_pre,
        predictors_treated=covariates @ truth,
        predictors_donors=covariates,
    )
    fit = fit_classic(inputs)
    np.testing.assert_allclose(fit.weights, truth, atol=0.05)
    v = [fit.details[f"v_{i}"] for i in range(5)]
    assert sum(v) == pytest.approx(1.0)
    assert min(v) >= 0

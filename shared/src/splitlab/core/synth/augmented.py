"""Ridge-augmented synthetic control with unit fixed effects: stable when donors outnumber
pre-periods.

Three steps (Ben-Michael, Feller and Rothstein 2021, with the de-meaning of their ``fixedeff``
option and the weight penalty of Arkhangelsky et al.'s synthetic difference-in-differences):

1. every unit's pre-period mean is subtracted, so levels need not match, only dynamics;
2. simplex weights are fit on the de-meaned pre-period with a ridge penalty
   ``zeta^2 * n_pre * ||w||^2`` (``zeta`` from the noise in first differences), which makes
   them unique and spread out when the donors could fit the pre-period exactly;
3. the remaining pre-period imbalance is corrected by a ridge regression of the donors'
   outcomes on their pre-period outcomes:
   ``w_aug = w + X0c (X0c' X0c + lambda I)^-1 (x1 - X0' w)``, with ``X0c`` the donors'
   de-meaned pre-period outcomes centred across donors and ``lambda`` chosen on the last pre-
   periods held out (``lambda = inf`` means no augmentation, so it never does much worse).
"""

from __future__ import annotations

import numpy as np

from splitlab.core.synth.counterfactual import Counterfactual, FloatArray, Inputs
from splitlab.core.synth.weights import simplex_weights

_LAMBDA_GRID = np.logspace(-3, 3, 13)
"""Ridge penalties relative to the largest squared singular value of the donor design."""


def weight_penalty(Y0_pre: FloatArray, n_post: int) -> float:
    """The ``zeta^2 n_pre`` penalty: zeta = n_post^(1/4) * sd of donor first differences."""
    n_pre = Y0_pre.shape[0]
    if n_pre < 2:
        return 0.0
    sigma = float(np.std(np.diff(Y0_pre, axis=0)))
    zeta = max(n_post, 1) ** 0.25 * sigma
    return float(zeta**2 * n_pre)


def augmented_weights(
    Y0_pre: FloatArray, y_pre: FloatArray, n_post: int, lam: float
) -> tuple[FloatArray, FloatArray, float]:
    """Return ``(w_sc, w_aug, intercept)`` on de-meaned data for ridge penalty ``lam``.

    ``lam`` is relative to the largest squared singular value; ``inf`` gives ``w_aug = w_sc``.
    The counterfactual is ``intercept + Y0 @ w_aug`` with
    ``intercept = mean(y_pre) - mean(Y0_pre, axis=0) @ w_aug``.
    """
    w_sc = penalised_weights(Y0_pre, y_pre, n_post)
    w_aug, intercept = augment(Y0_pre, y_pre, w_sc, lam)
    return w_sc, w_aug, intercept


def penalised_weights(Y0_pre: FloatArray, y_pre: FloatArray, n_post: int) -> FloatArray:
    """Step 2: simplex weights on the de-meaned pre-period with the ``zeta^2 n_pre`` penalty."""
    X0 = Y0_pre - Y0_pre.mean(axis=0)
    x1 = y_pre - y_pre.mean()
    return simplex_weights(X0, x1, ridge=weight_penalty(Y0_pre, n_post))


def augment(
    Y0_pre: FloatArray, y_pre: FloatArray, w_sc: FloatArray, lam: float
) -> tuple[FloatArray, float]:
    """Step 3: the ridge correction of ``w_sc`` for penalty ``lam``; returns the weights and
    the intercept."""
    donor_means = Y0_pre.mean(axis=0)
    X0 = Y0_pre - donor_means  # periods x donors, each donor de-meaned
    x1 = y_pre - y_pre.mean()
    w_aug = w_sc.copy()
    if np.isfinite(lam):
        X0c = X0 - X0.mean(axis=1, keepdims=True)  # centred across donors
        top = float(np.linalg.norm(X0c, 2)) ** 2
        if top > 0:
            gram = X0c @ X0c.T  # n_pre x n_pre
            imbalance = x1 - X0 @ w_sc
            correction = X0c.T @ np.linalg.solve(gram + lam * top * np.eye(len(x1)), imbalance)
            w_aug = w_sc + correction
    intercept = float(y_pre.mean() - donor_means @ w_aug)
    return w_aug, intercept


def choose_lambda(Y0_pre: FloatArray, y_pre: FloatArray, n_post: int) -> float:
    """The ridge penalty with the smallest error on the held-out last pre-periods.

    The penalised simplex weights do not depend on the penalty, so they are fit once.
    """
    n_pre = Y0_pre.shape[0]
    n_hold = max(1, n_pre // 4)
    n_train = n_pre - n_hold
    if n_train < 3:
        return float("inf")
    w_sc = penalised_weights(Y0_pre[:n_train], y_pre[:n_train], n_hold)
    best_lam, best_error = float("inf"), np.inf
    for lam in [float("inf"), *_LAMBDA_GRID.tolist()]:
        w, intercept = augment(Y0_pre[:n_train], y_pre[:n_train], w_sc, lam)
        error = float(np.mean((y_pre[n_train:] - intercept - Y0_pre[n_train:] @ w) ** 2))
        if error < best_error - 1e-12:
            best_lam, best_error = lam, error
    return best_lam


def fit_augmented(inputs: Inputs) -> Counterfactual:
    """Ridge-augmented, de-meaned synthetic control on ``inputs``."""
    Y0_pre = inputs.donors[: inputs.n_pre]
    n_post = inputs.donors.shape[0] - inputs.n_pre
    lam = choose_lambda(Y0_pre, inputs.y_pre, n_post)
    _, w, intercept = augmented_weights(Y0_pre, inputs.y_pre, n_post, lam)
    return Counterfactual(
        values=intercept + inputs.donors @ w,
        weights=w,
        intercept=intercept,
        details={"ridge_lambda": lam},
    )

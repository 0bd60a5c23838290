"""Classic synthetic control: simplex-constrained donor weights and predictor importance.

The weights solve ``min_w (x1 - X0 w)' V (x1 - X0 w)`` subject to ``w >= 0`` and
``sum(w) = 1`` (Abadie, Diamond and Hainmueller 2010). Without covariates the predictors are
the pre-period outcomes themselves and ``V`` is the identity. With covariates the predictors are
the covariates (averaged over their periods) plus the pre-period outcome averaged over thirds of
the pre-period, and ``V`` (diagonal, non-negative, summing to one) is chosen by the usual nested
optimisation: the outer loop minimises the pre-period outcome MSPE of the weights the inner
problem returns for that ``V``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from splitlab.core.synth.counterfactual import Counterfactual, FloatArray, Inputs

_SUM_PENALTY = 1e4
"""Weight of the appended sum-to-one row, relative to the scale of the design."""


def simplex_weights(A: FloatArray, b: FloatArray, ridge: float = 0.0) -> FloatArray:
    """``argmin ||A w - b||^2 + ridge ||w||^2`` over the probability simplex.

    Solved as a non-negative least-squares problem with the constraint ``sum(w) = 1`` appended
    as a heavily weighted row, then renormalised (the residual violation is of order 1e-8).
    ``A`` has one column per donor.
    """
    n_rows, n_donors = A.shape
    if n_donors == 1:
        return np.ones(1)
    scale = float(np.sqrt(np.mean(A**2)))
    if not np.isfinite(scale) or scale == 0.0:
        scale = 1.0
    A_s, b_s = A / scale, b / scale
    penalty = _SUM_PENALTY * max(1.0, float(np.sqrt(n_rows)))
    blocks = [A_s, np.full((1, n_donors), penalty)]
    targets = [b_s, np.array([penalty])]
    if ridge > 0:
        blocks.append(np.sqrt(ridge) / scale * np.eye(n_donors))
        targets.append(np.zeros(n_donors))
    w, _ = optimize.nnls(np.vstack(blocks), np.concatenate(targets), maxiter=50 * n_donors)
    total = float(w.sum())
    if total <= 0 or not np.isfinite(total):
        return np.full(n_donors, 1.0 / n_donors)
    return np.asarray(w / total, dtype=np.float64)


def block_means(y_pre: FloatArray, n_blocks: int = 3) -> FloatArray:
    """Means of ``y_pre`` (periods first) over ``n_blocks`` consecutive, near-equal blocks."""
    chunks = np.array_split(np.arange(y_pre.shape[0]), min(n_blocks, y_pre.shape[0]))
    return np.stack([y_pre[idx].mean(axis=0) for idx in chunks])


def fit_classic(inputs: Inputs) -> Counterfactual:
    """Classic synthetic control on ``inputs`` (nested ``V`` when predictors are given)."""
    Y0_pre = inputs.donors[: inputs.n_pre]
    if inputs.predictors_treated is None or inputs.predictors_donors is None:
        w = simplex_weights(Y0_pre, inputs.y_pre)
        return Counterfactual(values=inputs.donors @ w, weights=w)
    x1 = np.concatenate([inputs.predictors_treated, block_means(inputs.y_pre)])
    X0 = np.vstack([inputs.predictors_donors, block_means(Y0_pre)])
    v, w = predictor_importance(x1, X0, inputs.y_pre, Y0_pre)
    details = {f"v_{i}": float(value) for i, value in enumerate(v)}
    return Counterfactual(values=inputs.donors @ w, weights=w, details=details)


def predictor_importance(
    x1: FloatArray, X0: FloatArray, y_pre: FloatArray, Y0_pre: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Nested optimisation of the diagonal ``V``; returns ``(v, w)``.

    Predictors are standardised by their spread across units first, so ``V`` compares like
    with like. ``V`` is parametrised as a softmax, searched by Nelder-Mead from two starts
    (equal importance, and inverse-variance of a regression of the pre-period outcome on the
    predictors, as in the Synth package), keeping the best.
    """
    n_predictors = x1.shape[0]
    spread = np.std(np.column_stack([x1, X0]), axis=1)
    spread[~np.isfinite(spread) | (spread == 0)] = 1.0
    x1_s, X0_s = x1 / spread, X0 / spread[:, None]

    def weights_for(v: FloatArray) -> FloatArray:
        root = np.sqrt(v)
        return simplex_weights(root[:, None] * X0_s, root * x1_s)

    def loss(theta: FloatArray) -> float:
        w = weights_for(_softmax(theta))
        return float(np.mean((y_pre - Y0_pre @ w) ** 2))

    starts = [np.zeros(n_predictors), _regression_start(x1_s, X0_s, y_pre, Y0_pre)]
    best_theta, best_loss = starts[0], loss(starts[0])
    for start in starts:
        found = optimize.minimize(
            loss,
            start,
            method="Nelder-Mead",
            options={"maxiter": 150 * n_predictors, "xatol": 1e-4, "fatol": 1e-10},
        )
        if float(found.fun) < best_loss:
            best_theta, best_loss = np.asarray(found.x, dtype=np.float64), float(found.fun)
    v = _softmax(best_theta)
    return v, weights_for(v)


def _regression_start(
    x1: FloatArray, X0: FloatArray, y_pre: FloatArray, Y0_pre: FloatArray
) -> FloatArray:
    """Log of squared standardised coefficients of the pre-period mean outcome on predictors."""
    design = np.column_stack([np.ones(X0.shape[1] + 1), np.column_stack([x1, X0]).T])
    target = np.concatenate([[y_pre.mean()], Y0_pre.mean(axis=0)])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    importance = coef[1:] ** 2 + 1e-8
    return np.asarray(np.log(importance / importance.sum()), dtype=np.float64)


def _softmax(theta: FloatArray) -> FloatArray:
    shifted = np.exp(theta - np.max(theta))
    return np.asarray(shifted / shifted.sum(), dtype=np.float64)

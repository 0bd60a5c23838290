"""Regression adjustment with several covariates, Lin (2013) style.

Lin's estimator fits ``y ~ 1 + T + (X - mean_X) + T (X - mean_X)``: a separate slope per arm,
covariates centred at their mean over all arms. It is the same as an OLS of ``y`` on ``X``
within each arm, evaluated at the overall covariate mean, so each arm's adjusted mean is
``mean_y,a - beta_a' (mean_X,a - mean_X)``. Both the slopes and the variances come from each
arm's centred cross products, so the method runs on sufficient statistics.

The variance of an arm's adjusted mean is the per-arm OLS variance of the fitted value at
``mean_X``: ``s^2_res (1/n + d' S_XX^-1 d)`` with ``d = mean_X,a - mean_X``. For the
treatment contrast this is the heteroskedasticity-robust (HC) sandwich of Lin's regression
up to terms of order ``1/n^2`` (each arm has its own residual variance); the exact HC
sandwich would need fourth moments, which SQL aggregates do not carry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from splitlab.core.stats.comparison import ArmEstimate
from splitlab.core.stats.means import mean_estimate
from splitlab.core.stats.sufficient import Moments, merge_all

__all__ = ["lin_estimates", "residual_variance"]


def _fit(m: Moments, y: int, xs: list[int]) -> tuple[np.ndarray, float, int]:
    """Slopes, residual sum of squares and rank of the within-arm OLS of y on xs."""
    sxx = m.comoment[np.ix_(xs, xs)]
    sxy = m.comoment[xs, y]
    scale = np.sqrt(np.clip(np.diag(sxx), 0.0, None))
    usable = scale > 0
    beta = np.zeros(len(xs))
    rank = 0
    if usable.any():
        # Solve on the correlation scale for conditioning; drop zero-variance covariates.
        s = scale[usable]
        corr = sxx[np.ix_(usable, usable)] / np.outer(s, s)
        solution, _, rank, _ = np.linalg.lstsq(corr, sxy[usable] / s, rcond=1e-12)
        beta[usable] = solution / s
    residual_ss = max(float(m.comoment[y, y] - sxy @ beta), 0.0)
    return beta, residual_ss, int(rank)


def residual_variance(m: Moments, y: int = 0, covariates: Sequence[int] = (1,)) -> float:
    """Within-arm residual variance of ``y`` after OLS on ``covariates`` (NaN if undefined)."""
    xs = list(covariates)
    _, residual_ss, rank = _fit(m, y, xs)
    dof = m.n - 1 - rank
    return residual_ss / dof if dof > 0 else math.nan


def lin_estimates(
    arms: Sequence[Moments], y: int = 0, covariates: Sequence[int] | None = None
) -> list[ArmEstimate]:
    """Lin-adjusted estimates of every arm (same order as ``arms``).

    ``covariates`` are column indices of the covariates (default: every column but ``y``).
    """
    if not arms:
        raise ValueError("arms must hold at least one arm's statistics")
    k = arms[0].k
    xs = [j for j in range(k) if j != y] if covariates is None else list(covariates)
    if not xs:
        raise ValueError("covariates must name at least one column besides y")
    overall = merge_all(arms).mean[xs]
    estimates = []
    for m in arms:
        plain = mean_estimate(m, y)
        beta, residual_ss, rank = _fit(m, y, xs)
        dof = m.n - 1 - rank
        if m.n < 2 or dof <= 0:
            estimates.append(
                ArmEstimate(m.n, plain.mean, math.nan, 0.0, plain.mean, plain.variance)
            )
            continue
        d = m.mean[xs] - overall
        s2 = residual_ss / dof
        sxx = m.comoment[np.ix_(xs, xs)]
        leverage = float(d @ np.linalg.pinv(sxx, rcond=1e-12, hermitian=True) @ d)
        mean = float(m.mean[y] - beta @ d)
        variance = s2 * (1.0 / m.n + leverage)
        estimates.append(ArmEstimate(m.n, mean, variance, float(dof), plain.mean, plain.variance))
    return estimates

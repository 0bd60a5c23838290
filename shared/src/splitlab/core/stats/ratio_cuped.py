"""CUPED for ratio metrics: the delta method with covariates (Deng et al., 2013; 2018).

A ratio metric ``R_a = mean(Y) / mean(N)`` of arm ``a`` (clicks per session, latency per
request) is, to first order, the mean of the unit's *linearised* value
``L_i = (Y_i - R_a N_i) / mean(N)`` plus ``R_a``; the delta-method variance
(:func:`splitlab.core.stats.ratio.ratio_estimate`) is ``Var(L) / n``. CUPED applies to ``L``
as to any per-unit metric: ``R_a,adj = R_a - theta' (mean_X,a - mean_X)`` with ``mean_X`` the
covariates' mean over all arms and ``theta`` the slope of ``L`` on the covariates ``X``, pooled
across arms like CUPED's (``(sum_a S_XX,a)^-1 sum_a S_XL,a``). Its variance is the variance of
``L - theta' X`` within the arm over ``n``.

Every quantity comes from the arm's :class:`~splitlab.core.stats.sufficient.Moments` over
``[Y, N, X_1, ..., X_p]``: with ``g = (1, -R_a) / mean(N)``,
``S_LL = g' S_[Y,N] g`` and ``S_XL = S_[X,(Y,N)] g``. So SQL aggregates (the analyzer's) carry
the method, with no per-unit pass.

The covariates are per-unit columns; a ratio's natural ones are its own numerator and
denominator of the pre-period (``theta`` then has two entries, one per part, which includes the
linearised pre-period ratio as a special case), or any pre-exposure feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from splitlab.core.stats.comparison import ArmEstimate
from splitlab.core.stats.ratio import ratio_estimate
from splitlab.core.stats.sufficient import FloatArray, Moments, merge_all

__all__ = ["linearised_comoments", "ratio_cuped_estimates", "ratio_cuped_theta"]


def linearised_comoments(
    m: Moments, covariates: Sequence[int], numerator: int = 0, denominator: int = 1
) -> tuple[float, FloatArray, FloatArray] | None:
    """``(S_LL, S_XL, S_XX)``: centred cross products of the arm's linearised ratio and the
    covariates; None when the arm has no units or its mean denominator is 0."""
    if m.n == 0:
        return None
    mu_d = float(m.mean[denominator])
    if mu_d == 0.0:
        return None
    ratio = float(m.mean[numerator]) / mu_d
    parts = [numerator, denominator]
    xs = list(covariates)
    g = np.array([1.0, -ratio]) / mu_d
    s_ll = float(g @ m.comoment[np.ix_(parts, parts)] @ g)
    s_xl = m.comoment[np.ix_(xs, parts)] @ g
    s_xx = m.comoment[np.ix_(xs, xs)]
    return s_ll, np.asarray(s_xl, dtype=np.float64), np.asarray(s_xx, dtype=np.float64)


def _solve(s_xx: FloatArray, s_xl: FloatArray) -> FloatArray:
    """The OLS slopes ``S_XX^-1 S_XL`` on the correlation scale; zero-variance columns get 0."""
    scale = np.sqrt(np.clip(np.diag(s_xx), 0.0, None))
    usable = scale > 0
    theta = np.zeros(s_xx.shape[0])
    if usable.any():
        s = scale[usable]
        corr = s_xx[np.ix_(usable, usable)] / np.outer(s, s)
        solution = np.linalg.lstsq(corr, s_xl[usable] / s, rcond=1e-12)[0]
        theta[usable] = solution / s
    return theta


def ratio_cuped_theta(
    arms: Sequence[Moments], covariates: Sequence[int], numerator: int = 0, denominator: int = 1
) -> FloatArray:
    """The pooled within-arm slopes of the linearised ratio on ``covariates``."""
    p = len(covariates)
    s_xx = np.zeros((p, p))
    s_xl = np.zeros(p)
    for m in arms:
        parts = linearised_comoments(m, covariates, numerator, denominator)
        if parts is None:
            continue
        s_xl += parts[1]
        s_xx += parts[2]
    if not np.all(np.isfinite(s_xl)) or not np.all(np.isfinite(s_xx)):
        return np.zeros(p)
    return _solve(s_xx, s_xl)


def ratio_cuped_estimates(
    arms: Sequence[Moments],
    covariates: Sequence[int],
    numerator: int = 0,
    denominator: int = 1,
    theta: Sequence[float] | None = None,
) -> list[ArmEstimate]:
    """CUPED-adjusted ratio estimates of every arm (same order as ``arms``).

    ``covariates`` are column indices of the covariates in each arm's statistics; ``theta``
    overrides the pooled slopes (one per covariate).
    """
    if not arms:
        raise ValueError("arms must hold at least one arm's statistics")
    xs = list(covariates)
    if not xs:
        raise ValueError("covariates must name at least one covariate column")
    if numerator in xs or denominator in xs:
        raise ValueError("covariates must not include the numerator or denominator column")
    slopes = (
        ratio_cuped_theta(arms, xs, numerator, denominator)
        if theta is None
        else np.asarray(theta, dtype=np.float64).reshape(len(xs))
    )
    overall = merge_all(arms).mean[xs]
    estimates = []
    for m in arms:
        plain = ratio_estimate(m, numerator, denominator)
        parts = linearised_comoments(m, xs, numerator, denominator)
        if parts is None or m.n < 2:
            estimates.append(plain)
            continue
        s_ll, s_xl, s_xx = parts
        residual_ss = max(s_ll - 2.0 * float(slopes @ s_xl) + float(slopes @ s_xx @ slopes), 0.0)
        mean = plain.mean - float(slopes @ (m.mean[xs] - overall))
        variance = residual_ss / (m.n - 1) / m.n
        if not math.isfinite(variance):
            estimates.append(plain)
            continue
        estimates.append(
            ArmEstimate(m.n, mean, variance, float(m.n - 1), plain.mean, plain.variance)
        )
    return estimates

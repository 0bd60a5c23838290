"""CUPED (Deng et al., 2013): one pre-period covariate, one slope pooled across arms.

Columns of each arm's :class:`Moments` are ``[y, x]``. The slope ``theta`` is the pooled
within-arm regression slope ``sum_a S_xy,a / sum_a S_xx,a`` -- the coefficient of ``x`` in the
OLS regression ``y ~ 1 + arm dummies + x`` -- so the CUPED effect equals that regression's
treatment coefficient exactly. Each arm's adjusted mean is ``mean_y - theta (mean_x,a -
mean_x)`` with ``mean_x`` over all arms, and its variance is the variance of ``y - theta x``
within the arm divided by ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from splitlab.core.stats.comparison import ArmEstimate
from splitlab.core.stats.means import mean_estimate
from splitlab.core.stats.sufficient import Moments, merge_all

__all__ = ["cuped_estimates", "cuped_theta"]


def cuped_theta(arms: Sequence[Moments], y: int = 0, x: int = 1) -> float:
    """The pooled within-arm slope of ``y`` on ``x``; 0 when ``x`` has no variance."""
    sxx = sum(float(m.comoment[x, x]) for m in arms)
    sxy = sum(float(m.comoment[x, y]) for m in arms)
    if not (sxx > 0.0) or not math.isfinite(sxy):
        return 0.0
    return sxy / sxx


def cuped_estimates(
    arms: Sequence[Moments], theta: float | None = None, y: int = 0, x: int = 1
) -> list[ArmEstimate]:
    """CUPED-adjusted estimates of every arm (same order as ``arms``)."""
    if not arms:
        raise ValueError("arms must hold at least one arm's statistics")
    slope = cuped_theta(arms, y, x) if theta is None else float(theta)
    overall_x = float(merge_all(arms).mean[x])
    estimates = []
    for m in arms:
        plain = mean_estimate(m, y)
        if m.n < 2:
            estimates.append(plain)
            continue
        syy, sxy, sxx = (float(m.comoment[y, y]), float(m.comoment[x, y]), float(m.comoment[x, x]))
        residual_ss = max(syy - 2.0 * slope * sxy + slope * slope * sxx, 0.0)
        mean = float(m.mean[y]) - slope * (float(m.mean[x]) - overall_x)
        variance = residual_ss / (m.n - 1) / m.n
        estimates.append(
            ArmEstimate(m.n, mean, variance, float(m.n - 1), plain.mean, plain.variance)
        )
    return estimates

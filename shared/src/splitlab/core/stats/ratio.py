"""Ratio metrics (clicks per session, revenue per order) by the delta method.

The unit of randomization is the unit; the metric is ``sum(numerator) / sum(denominator)``
over an arm's units, so units' values are correlated within a unit and the naive binomial
or per-event variance is wrong. The first-order Taylor expansion of ``mean_num / mean_den``
gives ``Var(R) = (s_nn - 2 R s_nd + R^2 s_dd) / (n mean_den^2)`` from the 2x2 covariance.
"""

from __future__ import annotations

import math

from splitlab.core.stats.comparison import ArmEstimate, Comparison, compare
from splitlab.core.stats.sufficient import Moments

__all__ = ["ratio_estimate", "ratio_test"]


def ratio_estimate(moments: Moments, numerator: int = 0, denominator: int = 1) -> ArmEstimate:
    """The ratio of means of two columns with its delta-method variance."""
    n = moments.n
    if n == 0:
        return ArmEstimate(0, math.nan, math.nan, 0.0, math.nan, math.nan)
    mu_n = float(moments.mean[numerator])
    mu_d = float(moments.mean[denominator])
    if mu_d == 0.0:
        return ArmEstimate(n, math.nan, math.nan, float(n - 1), math.nan, math.nan)
    ratio = mu_n / mu_d
    if n < 2:
        return ArmEstimate(n, ratio, math.nan, 0.0, ratio, math.nan)
    c = moments.covariance
    s_nn, s_nd, s_dd = (
        float(c[numerator, numerator]),
        float(c[numerator, denominator]),
        float(c[denominator, denominator]),
    )
    variance = max(s_nn - 2.0 * ratio * s_nd + ratio * ratio * s_dd, 0.0) / (n * mu_d * mu_d)
    return ArmEstimate(n, ratio, variance, float(n - 1), ratio, variance)


def ratio_test(
    control: Moments,
    treatment: Moments,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> Comparison:
    """Difference of two ratio metrics; ``Moments`` columns are ``[numerator, denominator]``."""
    return compare(ratio_estimate(control), ratio_estimate(treatment), alpha, alternative)

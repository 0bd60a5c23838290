"""Means of a per-unit value: Welch's t test with Satterthwaite degrees of freedom."""

from __future__ import annotations

import math

from splitlab.core.stats.comparison import ArmEstimate, Comparison, compare
from splitlab.core.stats.sufficient import Moments

__all__ = ["mean_estimate", "welch"]


def mean_estimate(moments: Moments, column: int = 0) -> ArmEstimate:
    """The plain sample mean of one column with the variance of that mean (``s^2 / n``)."""
    n = moments.n
    if n == 0:
        return ArmEstimate(0, math.nan, math.nan, 0.0, math.nan, math.nan)
    mean = float(moments.mean[column])
    variance = float(moments.comoment[column, column]) / (n - 1) / n if n >= 2 else math.nan
    return ArmEstimate(n, mean, variance, float(n - 1), mean, variance)


def welch(
    control: Moments,
    treatment: Moments,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    column: int = 0,
) -> Comparison:
    """Welch's unequal-variance t test of ``mean(treatment) - mean(control)``.

    Matches ``scipy.stats.ttest_ind(treatment, control, equal_var=False)`` (p-value and
    ``confidence_interval``), computed from sufficient statistics only.
    """
    return compare(
        mean_estimate(control, column), mean_estimate(treatment, column), alpha, alternative
    )

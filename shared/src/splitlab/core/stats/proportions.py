"""Proportions (conversion): the two-proportion z test.

The p-value uses the pooled proportion under the null hypothesis (the classical z test, as
``statsmodels.stats.proportion.proportions_ztest``); the confidence interval uses the
unpooled (Wald) standard error, which is the one that describes the effect's uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import replace

from splitlab.core.stats.comparison import (
    ArmEstimate,
    Comparison,
    check_alternative,
    compare,
    p_value_from_statistic,
)
from splitlab.core.stats.sufficient import Moments

__all__ = ["proportion_estimate", "proportion_from_moments", "two_proportion_z"]


def proportion_estimate(successes: float, n: int) -> ArmEstimate:
    """A proportion ``successes / n`` with the binomial variance ``p (1 - p) / n``."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"successes must lie in [0, n]; got successes={successes}, n={n}")
    if n == 0:
        return ArmEstimate(0, math.nan, math.nan, math.inf, math.nan, math.nan)
    p = successes / n
    variance = p * (1.0 - p) / n
    return ArmEstimate(n, p, variance, math.inf, p, variance)


def proportion_from_moments(moments: Moments, column: int = 0) -> ArmEstimate:
    """The proportion of a 0/1 column summarized by ``moments``."""
    return proportion_estimate(float(moments.sums[column]), moments.n)


def two_proportion_z(
    successes_control: float,
    n_control: int,
    successes_treatment: float,
    n_treatment: int,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> Comparison:
    """Two-proportion z test: pooled-variance p-value, unpooled (Wald) confidence interval."""
    alt = check_alternative(alternative)
    control = proportion_estimate(successes_control, n_control)
    treatment = proportion_estimate(successes_treatment, n_treatment)
    result = compare(control, treatment, alpha, alt)
    if result.status != "ok":
        return result
    pooled = (successes_control + successes_treatment) / (n_control + n_treatment)
    pooled_var = pooled * (1.0 - pooled) * (1.0 / n_control + 1.0 / n_treatment)
    if pooled_var <= 0:
        return result
    z = result.effect / math.sqrt(pooled_var)
    return replace(result, p_value=p_value_from_statistic(z, math.inf, alt))

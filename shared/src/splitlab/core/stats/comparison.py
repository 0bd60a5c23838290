"""The common shape of every two-arm test: per-arm estimates in, one comparison out.

Each method (Welch, proportions, ratio, CUPED, regression, CUPAC) reduces an arm to an
:class:`ArmEstimate`: a (possibly covariate-adjusted) mean, the variance of that mean, and the
degrees of freedom of the variance estimate. :func:`compare` turns a control and a treatment
estimate into a :class:`Comparison`: the absolute effect with a Welch-Satterthwaite t (or a z
when the degrees of freedom are infinite), and the relative effect by the delta method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import special

from splitlab.core.errors import ArgumentError

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")

__all__ = [
    "ALTERNATIVES",
    "Alternative",
    "ArmEstimate",
    "Comparison",
    "check_alpha",
    "check_alternative",
    "compare",
    "p_value_from_statistic",
]


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Validate a significance level."""
    if not (isinstance(alpha, int | float) and 0.0 < float(alpha) < 1.0):
        raise ArgumentError(name, f"{name} must be a number in (0, 1), e.g. 0.05; got {alpha!r}")
    return float(alpha)


def check_alternative(alternative: str) -> Alternative:
    """Validate the alternative hypothesis."""
    if alternative not in ALTERNATIVES:
        raise ArgumentError(
            "alternative", f"alternative must be one of {list(ALTERNATIVES)}; got {alternative!r}"
        )
    return alternative  # type: ignore[return-value]


@dataclass(frozen=True)
class ArmEstimate:
    """One arm reduced to what a comparison needs."""

    n: int
    mean: float
    """The estimate of the arm's mean (adjusted when a covariate method is used)."""
    variance: float
    """The estimated variance of ``mean`` (not of a unit's value)."""
    dof: float
    """Degrees of freedom of ``variance`` (``math.inf`` for a normal approximation)."""
    mean_unadjusted: float
    """The plain sample mean."""
    variance_unadjusted: float
    """The variance of the plain sample mean."""


@dataclass(frozen=True)
class Comparison:
    """Treatment against control for one metric."""

    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    effect: float
    se: float
    df: float
    ci_lower: float
    ci_upper: float
    p_value: float
    rel_effect: float
    rel_se: float
    rel_ci_lower: float
    rel_ci_upper: float
    alpha: float
    alternative: Alternative
    variance: float
    """Variance of the effect estimate under the method used."""
    variance_unadjusted: float
    """Variance of the plain difference in means, for ``variance_reduction``."""
    status: str = "ok"
    """``ok`` or a short reason why the numbers are NaN."""

    @property
    def variance_reduction(self) -> float:
        """Realized variance reduction ``1 - var_adjusted / var_unadjusted``."""
        if not (self.variance_unadjusted > 0 and math.isfinite(self.variance)):
            return math.nan
        return 1.0 - self.variance / self.variance_unadjusted

    @property
    def statistic(self) -> float:
        """The t (or z) statistic of the absolute effect."""
        return self.effect / self.se if self.se > 0 else math.nan


def p_value_from_statistic(statistic: float, df: float, alternative: Alternative) -> float:
    """P-value of a t (``df`` finite) or z (``df`` infinite) statistic."""
    if not math.isfinite(statistic):
        return math.nan
    if alternative == "two-sided":
        return float(min(1.0, 2.0 * _sf(abs(statistic), df)))
    if alternative == "greater":
        return float(_sf(statistic, df))
    return float(_sf(-statistic, df))


def _sf(x: float, df: float) -> float:
    """Survival function of the t (or, for infinite ``df``, the normal) distribution."""
    return float(special.ndtr(-x)) if math.isinf(df) else float(special.stdtr(df, -x))


def _interval(
    estimate: float, se: float, quantile: float, alternative: Alternative
) -> tuple[float, float]:
    half = quantile * se
    if alternative == "greater":
        return estimate - half, math.inf
    if alternative == "less":
        return -math.inf, estimate + half
    return estimate - half, estimate + half


def critical_value(alpha: float, df: float, alternative: Alternative) -> float:
    """The quantile that bounds a (1 - alpha) interval for the given alternative."""
    level = 1.0 - (alpha / 2.0 if alternative == "two-sided" else alpha)
    if math.isinf(df):
        return float(special.ndtri(level))
    return float(special.stdtrit(df, level))


def satterthwaite(variances: tuple[float, float], dofs: tuple[float, float]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of two independent variances."""
    total = variances[0] + variances[1]
    denominator = 0.0
    for v, d in zip(variances, dofs, strict=True):
        if math.isinf(d):
            continue
        if d <= 0:
            return math.nan
        denominator += v * v / d
    if denominator == 0.0:
        return math.inf
    return total * total / denominator


def _nan_comparison(
    control: ArmEstimate,
    treatment: ArmEstimate,
    alpha: float,
    alternative: Alternative,
    status: str,
) -> Comparison:
    nan = math.nan
    return Comparison(
        n_control=control.n,
        n_treatment=treatment.n,
        mean_control=control.mean_unadjusted,
        mean_treatment=treatment.mean_unadjusted,
        effect=treatment.mean - control.mean if control.n and treatment.n else nan,
        se=nan,
        df=nan,
        ci_lower=nan,
        ci_upper=nan,
        p_value=nan,
        rel_effect=nan,
        rel_se=nan,
        rel_ci_lower=nan,
        rel_ci_upper=nan,
        alpha=alpha,
        alternative=alternative,
        variance=nan,
        variance_unadjusted=control.variance_unadjusted + treatment.variance_unadjusted,
        status=status,
    )


def compare(
    control: ArmEstimate,
    treatment: ArmEstimate,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> Comparison:
    """Absolute and relative effect of ``treatment`` over ``control`` with CIs and p-value.

    The absolute effect uses a t distribution with Welch-Satterthwaite degrees of freedom
    (a normal when both arms have infinite degrees of freedom). The relative effect
    ``treatment.mean / control.mean - 1`` uses the delta method and a normal interval.
    Degenerate inputs (an arm with n < 2, zero variance) give NaN and a ``status``.
    """
    alpha = check_alpha(alpha)
    alt = check_alternative(alternative)
    if control.n < 2 or treatment.n < 2:
        return _nan_comparison(control, treatment, alpha, alt, "insufficient_data: n < 2 in an arm")
    values = (control.variance, treatment.variance, control.mean, treatment.mean)
    if not all(math.isfinite(v) for v in values):
        return _nan_comparison(control, treatment, alpha, alt, "degenerate: non-finite estimate")
    variance = control.variance + treatment.variance
    if variance <= 0.0:
        return _nan_comparison(control, treatment, alpha, alt, "degenerate: zero variance")
    df = satterthwaite((control.variance, treatment.variance), (control.dof, treatment.dof))
    if not (df > 0):
        return _nan_comparison(control, treatment, alpha, alt, "degenerate: no degrees of freedom")
    effect = treatment.mean - control.mean
    se = math.sqrt(variance)
    p_value = p_value_from_statistic(effect / se, df, alt)
    ci_lower, ci_upper = _interval(effect, se, critical_value(alpha, df, alt), alt)

    if control.mean != 0.0:
        ratio = treatment.mean / control.mean
        rel_effect = ratio - 1.0
        rel_var = (treatment.variance + ratio * ratio * control.variance) / control.mean**2
        rel_se = math.sqrt(rel_var)
        rel_ci_lower, rel_ci_upper = _interval(
            rel_effect, rel_se, critical_value(alpha, math.inf, alt), alt
        )
    else:
        rel_effect = rel_se = rel_ci_lower = rel_ci_upper = math.nan

    return Comparison(
        n_control=control.n,
        n_treatment=treatment.n,
        mean_control=control.mean_unadjusted,
        mean_treatment=treatment.mean_unadjusted,
        effect=effect,
        se=se,
        df=df,
        ci_lower=ci_lower,
        ci_upper=ci_upper,
        p_value=p_value,
        rel_effect=rel_effect,
        rel_se=rel_se,
        rel_ci_lower=rel_ci_lower,
        rel_ci_upper=rel_ci_upper,
        alpha=alpha,
        alternative=alt,
        variance=variance,
        variance_unadjusted=control.variance_unadjusted + treatment.variance_unadjusted,
    )

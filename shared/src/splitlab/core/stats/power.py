"""Power, sample size, minimum detectable effect and runtime for means and proportions.

The normal approximation throughout. For a mean the per-unit variance is ``sd^2``; for a
proportion the test uses the pooled proportion under the null and the unpooled variance under
the alternative (as the two-proportion z test does), optionally with Fleiss' continuity
correction. An expected ``variance_reduction`` (CUPED, CUPAC) scales every variance by
``1 - variance_reduction``. ``treatment_ratio`` is ``n_treatment / n_control`` (unequal
splits); with ``n_variants > 2`` every treatment arm is sized like the one compared here.
Power counts both rejection tails of a two-sided test, so sample sizes agree with
``statsmodels``' ``NormalIndPower.solve_power``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import optimize
from scipy import stats as sps

from splitlab.core.stats.comparison import Alternative, check_alpha, check_alternative

__all__ = ["MDEResult", "SampleSize", "mde", "power_at", "runtime_days", "sample_size"]

MetricType = Literal["mean", "proportion"]

MIN_ARM_UNITS = 2
"""The smallest arm ``sample_size`` answers: one unit has no variance to test with."""


@dataclass(frozen=True)
class _Design:
    metric_type: MetricType
    baseline: float
    sd: float | None
    alpha: float
    alternative: Alternative
    treatment_ratio: float
    variance_reduction: float

    def variances(self, effect: float) -> tuple[float, float]:
        """Per-unit (null, alternative) variance factors of the difference, per control unit."""
        k = self.treatment_ratio
        keep = 1.0 - self.variance_reduction
        if self.metric_type == "mean":
            assert self.sd is not None
            v = self.sd * self.sd * keep * (1.0 + 1.0 / k)
            return v, v
        p1 = self.baseline
        p2 = self.baseline + effect
        pooled = (p1 + k * p2) / (1.0 + k)
        null = pooled * (1.0 - pooled) * (1.0 + 1.0 / k) * keep
        alt = (p1 * (1.0 - p1) + p2 * (1.0 - p2) / k) * keep
        return null, alt


def _design(
    metric_type: str,
    baseline: float,
    sd: float | None,
    alpha: float,
    alternative: str,
    treatment_ratio: float,
    variance_reduction: float,
) -> _Design:
    if metric_type not in ("mean", "proportion"):
        raise ValueError(f"metric_type must be 'mean' or 'proportion'; got {metric_type!r}")
    if metric_type == "proportion":
        if not 0.0 < baseline < 1.0:
            raise ValueError(f"baseline must be a proportion in (0, 1); got {baseline}")
    else:
        if sd is None or not (sd > 0 and math.isfinite(sd)):
            raise ValueError(f"sd must be > 0 for metric_type='mean' (the per-unit sd); got {sd}")
        if not math.isfinite(baseline):
            raise ValueError(f"baseline must be a finite mean; got {baseline}")
    if not (treatment_ratio > 0 and math.isfinite(treatment_ratio)):
        raise ValueError(
            f"treatment_ratio must be > 0 and finite (n_treatment / n_control); "
            f"got {treatment_ratio}"
        )
    if not 0.0 <= variance_reduction < 1.0:
        raise ValueError(f"variance_reduction must be in [0, 1); got {variance_reduction}")
    return _Design(
        metric_type,  # type: ignore[arg-type]
        float(baseline),
        None if sd is None else float(sd),
        check_alpha(alpha),
        check_alternative(alternative),
        float(treatment_ratio),
        float(variance_reduction),
    )


def _absolute(design: _Design, mde_value: float, mde_type: str) -> float:
    if mde_type not in ("absolute", "relative"):
        raise ValueError(f"mde_type must be 'absolute' or 'relative'; got {mde_type!r}")
    if not (math.isfinite(mde_value) and mde_value != 0):
        raise ValueError(f"mde must be a nonzero finite number; got {mde_value}")
    effect = mde_value * design.baseline if mde_type == "relative" else mde_value
    if mde_type == "relative" and design.baseline == 0:
        raise ValueError("a relative mde needs a nonzero baseline; use mde_type='absolute'")
    if not math.isfinite(effect):
        raise ValueError(
            f"mde must be smaller: {mde_value} of the baseline {design.baseline} is beyond the "
            "float range"
        )
    # A one-sided alternative sets the direction (the mde's sign is ignored there), so the
    # proportion's range is checked on the directed effect: checking the signed input once let
    # --alternative less --mde 0.04 at baseline 0.03 plan for a proportion of -0.01.
    if design.alternative == "less":
        effect = -abs(effect)
    elif design.alternative == "greater":
        effect = abs(effect)
    if design.metric_type == "proportion" and not 0.0 < design.baseline + effect < 1.0:
        raise ValueError(
            f"mde moves the proportion to {design.baseline + effect:.4g}, outside (0, 1); "
            "use a smaller mde"
        )
    return effect


def _power(design: _Design, effect: float, n_control: float) -> float:
    null, alt = design.variances(effect)
    se0 = math.sqrt(null / n_control)
    se1 = math.sqrt(alt / n_control)
    if design.alternative == "two-sided":
        z = float(sps.norm.isf(design.alpha / 2.0))
        upper = sps.norm.sf((z * se0 - effect) / se1)
        lower = sps.norm.cdf((-z * se0 - effect) / se1)
        return float(upper + lower)
    z = float(sps.norm.isf(design.alpha))
    if design.alternative == "greater":
        return float(sps.norm.sf((z * se0 - effect) / se1))
    return float(sps.norm.cdf((-z * se0 - effect) / se1))


def power_at(
    n_control: float,
    baseline: float,
    effect: float,
    *,
    metric_type: str = "mean",
    sd: float | None = None,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    treatment_ratio: float = 1.0,
    variance_reduction: float = 0.0,
) -> float:
    """Power of the test with ``n_control`` control units against an absolute ``effect``."""
    if not n_control > 0:
        raise ValueError(f"n_control must be > 0; got {n_control}")
    d = _design(metric_type, baseline, sd, alpha, alternative, treatment_ratio, variance_reduction)
    return _power(d, float(effect), float(n_control))


def _fleiss(n: float, effect: float, k: float) -> float:
    """Fleiss, Tytun & Ury (1980) continuity correction of a control-arm sample size."""
    return n / 4.0 * (1.0 + math.sqrt(1.0 + 2.0 * (k + 1.0) / (n * k * abs(effect)))) ** 2


def _solve_n(design: _Design, effect: float, power: float) -> float:
    null, alt = design.variances(effect)
    z_a = float(
        # isf, not ppf(1 - x): below alpha ~1e-16, 1 - alpha is 1.0 and ppf is inf (alpha 1e-300
        # once read as "mde too small").
        sps.norm.isf(design.alpha / (2.0 if design.alternative == "two-sided" else 1.0))
    )
    z_b = float(sps.norm.ppf(power))
    try:
        guess = ((z_a * math.sqrt(null) + z_b * math.sqrt(alt)) / effect) ** 2
    except (OverflowError, ZeroDivisionError):
        guess = math.inf
    if not math.isfinite(guess):
        # sd near the float limit, an mde near 0 or an extreme treatment_ratio: no sample size a
        # float can hold (the solver would return nan or raise OverflowError).
        raise ValueError(
            f"mde must be larger: {effect:.6g} is too small for the per-unit variance (sd, "
            "baseline, treatment_ratio), no finite sample size detects it"
        )
    if design.alternative != "two-sided":
        return guess

    # The far tail adds a little power: solve exactly, the one-tail answer is an upper bound.
    def gap(n: float) -> float:
        return _power(design, effect, n) - power

    low = max(guess * 0.5, 1e-9)
    if gap(low) >= 0:
        return low
    return float(optimize.brentq(gap, low, guess * 1.000001 + 1e-9, xtol=1e-10, rtol=1e-14))


def _check_power(power: float) -> float:
    if not (isinstance(power, int | float) and 0.0 < float(power) < 1.0):
        raise ValueError(f"power must be in (0, 1), e.g. 0.8; got {power!r}")
    return float(power)


@dataclass(frozen=True)
class SampleSize:
    n_control: int
    n_treatment: int
    n_per_variant: int
    """The larger of the control and treatment arm sizes."""
    total_n: int
    n_variants: int
    metric_type: str
    baseline: float
    mde_absolute: float
    mde_relative: float
    alpha: float
    power: float
    alternative: str
    variance_reduction: float
    continuity_correction: bool
    n_control_exact: float
    """The unrounded control-arm size (what ``statsmodels`` reports)."""
    runtime_days: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_size(
    baseline: float,
    mde: float,
    *,
    metric_type: str = "mean",
    sd: float | None = None,
    mde_type: str = "absolute",
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
    treatment_ratio: float = 1.0,
    n_variants: int = 2,
    variance_reduction: float = 0.0,
    continuity_correction: bool = False,
    daily_units: float | None = None,
) -> SampleSize:
    """Units needed per arm to detect ``mde`` with the given ``power`` at level ``alpha``."""
    d = _design(metric_type, baseline, sd, alpha, alternative, treatment_ratio, variance_reduction)
    target = _check_power(power)
    if n_variants < 2:
        raise ValueError(f"n_variants must be >= 2 (control plus treatments); got {n_variants}")
    if continuity_correction and metric_type != "proportion":
        raise ValueError("continuity_correction applies to metric_type='proportion' only")
    effect = _absolute(d, float(mde), mde_type)
    n_exact = _solve_n(d, effect, target)
    if continuity_correction:
        n_exact = _fleiss(n_exact, effect, d.treatment_ratio)
    if not math.isfinite(n_exact * d.treatment_ratio):
        raise ValueError(
            f"treatment_ratio {d.treatment_ratio:.6g} makes the treatment arm larger than any "
            "count; use a ratio nearer 1"
        )
    # Never fewer than MIN_ARM_UNITS per arm: the tests run on the data (Welch, the z test) need
    # a variance in each arm, and the results call an arm with fewer units insufficient_data.
    n_control = max(MIN_ARM_UNITS, math.ceil(n_exact - 1e-9))
    n_treatment = max(MIN_ARM_UNITS, math.ceil(n_exact * d.treatment_ratio - 1e-9))
    total = n_control + (n_variants - 1) * n_treatment
    return SampleSize(
        n_control=n_control,
        n_treatment=n_treatment,
        n_per_variant=max(n_control, n_treatment),
        total_n=total,
        n_variants=n_variants,
        metric_type=metric_type,
        baseline=d.baseline,
        mde_absolute=abs(effect),
        mde_relative=abs(effect / d.baseline) if d.baseline != 0 else math.nan,
        alpha=d.alpha,
        power=target,
        alternative=d.alternative,
        variance_reduction=d.variance_reduction,
        continuity_correction=continuity_correction,
        n_control_exact=n_exact,
        runtime_days=None if daily_units is None else runtime_days(total, daily_units),
    )


@dataclass(frozen=True)
class MDEResult:
    mde_absolute: float
    mde_relative: float
    n_control: float
    n_treatment: float
    alpha: float
    power: float
    alternative: str
    metric_type: str
    variance_reduction: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mde(
    n_control: float,
    baseline: float,
    *,
    metric_type: str = "mean",
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
    treatment_ratio: float = 1.0,
    variance_reduction: float = 0.0,
) -> MDEResult:
    """Smallest effect detectable with ``n_control`` control units (and ``treatment_ratio``)."""
    if not n_control >= 2:
        raise ValueError(f"n_control must be >= 2 units; got {n_control}")
    d = _design(metric_type, baseline, sd, alpha, alternative, treatment_ratio, variance_reduction)
    target = _check_power(power)
    sign = -1.0 if d.alternative == "less" else 1.0
    if metric_type == "proportion":
        upper = (1.0 - d.baseline if sign > 0 else d.baseline) * (1.0 - 1e-12)
    else:
        assert d.sd is not None
        upper = d.sd * 100.0

    def gap(magnitude: float) -> float:
        return _power(d, sign * magnitude, float(n_control)) - target

    if gap(upper) < 0:
        raise ValueError(
            f"n_control={n_control} cannot reach power {target} for any effect; add units"
        )
    magnitude = float(optimize.brentq(gap, 1e-12, upper, xtol=1e-14, rtol=1e-12))
    return MDEResult(
        mde_absolute=magnitude,
        mde_relative=magnitude / abs(d.baseline) if d.baseline != 0 else math.nan,
        n_control=float(n_control),
        n_treatment=float(n_control) * d.treatment_ratio,
        alpha=d.alpha,
        power=target,
        alternative=d.alternative,
        metric_type=metric_type,
        variance_reduction=d.variance_reduction,
    )


def runtime_days(total_n: float, daily_units: float) -> float:
    """Days to enrol ``total_n`` units at ``daily_units`` new units per day (whole days)."""
    if not (daily_units > 0 and math.isfinite(daily_units)):
        raise ValueError(
            f"daily_units must be > 0 and finite (eligible units per day); got {daily_units}"
        )
    if total_n < 0:
        raise ValueError(f"total_n must be >= 0; got {total_n}")
    days = total_n / daily_units
    if not math.isfinite(days):
        raise ValueError(
            f"daily_units {daily_units:.6g} is too small: {total_n:,.0f} units would take more "
            "days than a number can hold; pass the eligible units per day"
        )
    return float(math.ceil(days))

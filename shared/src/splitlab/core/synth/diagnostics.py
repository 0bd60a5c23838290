"""Warnings about the pre-period and the fit: a poor fit, a treated unit outside its donors, a
drifting gap, a visibly non-stationary metric, extreme donor coefficients, a near-exact fit on
few periods. Each is a sentence an analyst can act on."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from splitlab.core.synth.counterfactual import FloatArray

POOR_FIT_SHARE = 0.5
"""Warn when the pre-period RMSPE exceeds this share of the treated pre-period's spread."""
HULL_SHARE = 0.5
"""Warn when the treated unit is above every donor (or below) in more than this share."""
TREND_P = 0.01
"""Significance of the trend in the pre-period gaps (or in the metric) that triggers a warning."""
EXTREME_WEIGHT = 10.0
"""Warn when a donor's weight (its coefficient, in outcome units per unit of the donor's
outcome) exceeds this in absolute value: the counterfactual then scales that donor's series
ten-fold or more, so its noise and any shock it has are scaled as much."""
EXTREME_WEIGHT_SUM = 5.0
"""Warn when the absolute weights sum to more than this (convex weights sum to exactly 1)."""
NEAR_EXACT_SHARE = 0.01
"""A pre-period RMSPE below this share of the treated pre-period's standard deviation is a
near-exact fit; with no more pre-periods than donors it is a warning."""
MAX_NAMED = 4


def fit_warnings(y_pre: FloatArray, fitted_pre: FloatArray, donors_pre: FloatArray) -> list[str]:
    """Poor fit, convex-hull and gap-drift warnings for one treated series."""
    notes: list[str] = []
    gaps = y_pre - fitted_pre
    pre_rmspe = float(np.sqrt(np.mean(gaps**2)))
    spread = float(np.std(y_pre))
    if spread > 0 and pre_rmspe > POOR_FIT_SHARE * spread:
        notes.append(
            f"poor pre-period fit: RMSPE {pre_rmspe:.4g} is {pre_rmspe / spread:.0%} of the "
            "treated unit's pre-period standard deviation; the counterfactual is not reliable"
        )
    above = float(np.mean(y_pre > donors_pre.max(axis=1)))
    below = float(np.mean(y_pre < donors_pre.min(axis=1)))
    if max(above, below) > HULL_SHARE:
        side = "above" if above >= below else "below"
        notes.append(
            f"the treated unit is {side} every donor in {max(above, below):.0%} of pre-periods; "
            "convex weights cannot reach it (consider method='augmented' or 'forecast')"
        )
    slope_p = _trend_p_value(gaps)
    if slope_p < TREND_P and pre_rmspe > 0:
        notes.append(
            f"the pre-period gap between actual and counterfactual trends over time "
            f"(p={slope_p:.2g}); effects may reflect diverging trends, check the in-time placebo"
        )
    return notes


def weight_warnings(weights: FloatArray, donor_names: list[str], method: str) -> list[str]:
    """Extreme donor coefficients: one above ``EXTREME_WEIGHT`` or a sum of absolute weights
    above ``EXTREME_WEIGHT_SUM``, naming the largest."""
    notes: list[str] = []
    magnitude = np.abs(weights)
    if magnitude.size == 0 or not np.all(np.isfinite(magnitude)):
        return notes
    order = np.argsort(-magnitude)[:MAX_NAMED]
    largest = ", ".join(f"{donor_names[i]} {weights[i]:.4g}" for i in order)
    total = float(magnitude.sum())
    advice = (
        "the counterfactual amplifies those donors' own noise and shocks; compare with "
        "method='classic' (convex weights) before trusting the effect"
    )
    if float(magnitude.max()) > EXTREME_WEIGHT:
        notes.append(
            f"extreme donor coefficients ({method}): {largest}, above the bound of "
            f"{EXTREME_WEIGHT:g} outcome units per unit of a donor's outcome "
            f"(absolute weights sum to {total:.4g}); {advice}"
        )
    elif total > EXTREME_WEIGHT_SUM:
        notes.append(
            f"extreme donor coefficients ({method}): absolute weights sum to {total:.4g}, above "
            f"the bound of {EXTREME_WEIGHT_SUM:g} (convex weights sum to 1; largest {largest}); "
            f"{advice}"
        )
    return notes


def near_exact_warning(y_pre: FloatArray, fitted_pre: FloatArray, n_donors: int) -> str | None:
    """A warning when the pre-period fit is near-exact with no more pre-periods than donors."""
    n_pre = y_pre.shape[0]
    spread = float(np.std(y_pre))
    if n_pre > n_donors or spread == 0:
        return None
    pre_rmspe = float(np.sqrt(np.mean((y_pre - fitted_pre) ** 2)))
    if pre_rmspe >= NEAR_EXACT_SHARE * spread:
        return None
    return (
        f"near-exact pre-period fit: RMSPE {pre_rmspe:.4g} is {pre_rmspe / spread:.2%} of the "
        f"treated unit's pre-period standard deviation, with {n_donors} donors for only "
        f"{n_pre} pre-periods; so many donors can reproduce almost any series this short, so "
        "the fit is no evidence that the counterfactual holds after the intervention (check "
        "the in-time placebo and compare methods)"
    )


def stationarity_warnings(y_pre: FloatArray) -> list[str]:
    """Warn when the treated metric is visibly non-stationary in the pre-period.

    Two checks: a strong linear trend (significant and explaining most of the variance) and a
    change of variance between the first and second half (F-test). Synthetic control copes with
    shared trends; the warning asks the analyst to check the donors share this one.
    """
    notes: list[str] = []
    n = y_pre.shape[0]
    if n < 6 or float(np.std(y_pre)) == 0:
        return notes
    t = np.arange(n, dtype=np.float64)
    fit = stats.linregress(t, y_pre)
    if fit.pvalue < TREND_P and fit.rvalue**2 > 0.5:
        notes.append(
            f"the metric trends in the pre-period (R^2={fit.rvalue**2:.2f} for a linear trend); "
            "the counterfactual relies on the donors sharing that trend"
        )
    half = n // 2
    first, second = np.diff(y_pre[:half]), np.diff(y_pre[half:])
    if first.size >= 3 and second.size >= 3:
        v1, v2 = float(np.var(first, ddof=1)), float(np.var(second, ddof=1))
        if v1 > 0 and v2 > 0:
            ratio = max(v1, v2) / min(v1, v2)
            dfn = (second if v2 >= v1 else first).size - 1
            dfd = (first if v2 >= v1 else second).size - 1
            p = 2 * float(stats.f.sf(ratio, dfn, dfd))
            if p < TREND_P:
                notes.append(
                    f"the metric's period-to-period variance changes {ratio:.1f}-fold within the "
                    "pre-period; the fit may not carry over to the post-period"
                )
    return notes


def in_time_warning(
    att: float,
    pre_rmspe: float,
    real_att: float,
    shift: int,
    placebo_range: tuple[float, float] | None = None,
) -> str | None:
    """A warning when the in-time placebo shows an effect before the intervention.

    With in-space placebos, it fires when the fake effect falls outside the range of placebo
    errors that the interval uses (the fake effect would itself be "significant"). Without
    them, when it is both more than twice the fake fit's pre-period RMSPE and at least half the
    real estimate.
    """
    if not math.isfinite(att) or not math.isfinite(pre_rmspe):
        return None
    if placebo_range is not None and all(map(math.isfinite, placebo_range)):
        alarming = not placebo_range[0] <= att <= placebo_range[1]
        reason = "outside the range of in-space placebo effects"
    else:
        alarming = abs(att) > 2 * max(pre_rmspe, 1e-12) and abs(att) >= 0.5 * abs(real_att)
        reason = f"more than twice its pre-period RMSPE ({pre_rmspe:.4g})"
    if alarming:
        return (
            f"in-time placebo: a fake intervention {shift} period(s) early shows an average "
            f"effect of {att:.4g}, {reason}; the counterfactual may not extrapolate"
        )
    return None


def _trend_p_value(gaps: FloatArray) -> float:
    if gaps.shape[0] < 4 or float(np.std(gaps)) == 0:
        return 1.0
    fit = stats.linregress(np.arange(gaps.shape[0], dtype=np.float64), gaps)
    return float(fit.pvalue)

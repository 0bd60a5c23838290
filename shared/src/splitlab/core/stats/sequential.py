"""Always-valid inference for continuous monitoring: asymptotic confidence sequences.

The confidence sequence of Waudby-Smith et al. (2021, "Time-uniform central limit theory"),
built on Robbins' normal mixture (Howard et al., 2021), covers the true effect at every look
simultaneously with probability ``>= 1 - alpha`` (asymptotically), so an analyst may look as
often as they like. With ``N`` units so far, ``s^2 = N se^2`` the per-unit variance of the
effect estimate and mixing parameter ``rho``, the half-width is

    sqrt(s^2) * sqrt( 2 (N rho^2 + 1) / (N^2 rho^2) * log( sqrt(N rho^2 + 1) / alpha ) ).

``rho`` is tunable: :func:`tuning_rho` chooses the value whose boundary is tightest at
``tuning_n`` units (the planned sample size is a good choice). The always-valid p-value is the
smallest ``alpha`` whose sequence excludes zero; it is only ever compared to the same ``rho``.
One-sided alternatives use the two-sided boundary at ``alpha`` (conservative, still valid).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from splitlab.core.stats.comparison import Comparison, check_alpha, critical_value
from splitlab.core.stats.sufficient import FloatArray

__all__ = [
    "DEFAULT_TUNING_N",
    "always_valid_p_value",
    "confidence_sequence_halfwidth",
    "running_p_values",
    "sequential_comparison",
    "tuning_rho",
]

DEFAULT_TUNING_N = 5000
"""Units at which the default boundary is tightest."""


def tuning_rho(alpha: float, tuning_n: float = DEFAULT_TUNING_N) -> float:
    """Mixing parameter that minimizes the half-width at ``tuning_n`` units."""
    alpha = check_alpha(alpha)
    if not tuning_n > 0:
        raise ValueError(f"tuning_n must be > 0 units (e.g. the planned sample); got {tuning_n}")
    log_term = -2.0 * math.log(alpha)
    return math.sqrt((log_term + math.log(log_term + 1.0)) / tuning_n)


def confidence_sequence_halfwidth(
    se: float, n: int, alpha: float, rho: float | None = None
) -> float:
    """Half-width of the asymptotic confidence sequence after ``n`` units."""
    alpha = check_alpha(alpha)
    if n < 1 or not math.isfinite(se) or se < 0:
        return math.nan
    r = tuning_rho(alpha) if rho is None else rho
    if not r > 0:
        raise ValueError(f"rho must be > 0; got {rho}")
    s2 = se * se * n
    nr2 = n * r * r
    return math.sqrt(
        s2 * 2.0 * (nr2 + 1.0) / (n * n * r * r) * math.log(math.sqrt(nr2 + 1.0) / alpha)
    )


def always_valid_p_value(effect: float, se: float, n: int, rho: float) -> float:
    """Smallest alpha whose confidence sequence (mixing ``rho``) excludes zero."""
    if n < 1 or not (math.isfinite(effect) and math.isfinite(se)) or se <= 0:
        return math.nan
    s2 = se * se * n
    nr2 = n * rho * rho
    log_p = 0.5 * math.log(nr2 + 1.0) - effect * effect * n * n * rho * rho / (
        2.0 * s2 * (nr2 + 1.0)
    )
    return float(min(1.0, math.exp(log_p)))


def sequential_comparison(
    comparison: Comparison, tuning_n: float = DEFAULT_TUNING_N, rho: float | None = None
) -> Comparison:
    """Replace a comparison's fixed-horizon CIs and p-value by always-valid ones."""
    if comparison.status != "ok":
        return comparison
    n = comparison.n_control + comparison.n_treatment
    r = tuning_rho(comparison.alpha, tuning_n) if rho is None else rho
    half = confidence_sequence_halfwidth(comparison.se, n, comparison.alpha, r)
    p = always_valid_p_value(comparison.effect, comparison.se, n, r)
    effect = comparison.effect
    alt = comparison.alternative
    # Relative effect: widen by the same factor as the absolute interval.
    fixed_half = comparison.effect - comparison.ci_lower
    if not math.isfinite(fixed_half):
        fixed_half = comparison.ci_upper - comparison.effect
    factor = half / fixed_half if fixed_half > 0 else math.nan
    rel_half = (
        factor
        * comparison.rel_se
        * critical_value(comparison.alpha, math.inf, comparison.alternative)
    )
    lower, upper = effect - half, effect + half
    rel_lower = comparison.rel_effect - rel_half
    rel_upper = comparison.rel_effect + rel_half
    if alt == "greater":
        upper, rel_upper = math.inf, math.inf
        p = p if effect > 0 else 1.0
    elif alt == "less":
        lower, rel_lower = -math.inf, -math.inf
        p = p if effect < 0 else 1.0
    return replace(
        comparison,
        ci_lower=lower,
        ci_upper=upper,
        p_value=p,
        rel_ci_lower=rel_lower,
        rel_ci_upper=rel_upper,
    )


def running_p_values(p_values: Iterable[float]) -> FloatArray:
    """Running minimum of always-valid p-values over looks (what a monitor should show)."""
    values = np.asarray(list(p_values), dtype=np.float64)
    return np.fmin.accumulate(values) if values.size else values

"""Tests that assume no distribution: Mann-Whitney U and the bootstrap.

Mann-Whitney tests whether a treated unit's value tends to exceed a control unit's (it is not
a test of means); it uses the normal approximation with tie and continuity corrections, as
``scipy.stats.mannwhitneyu(method="asymptotic")``. The percentile bootstrap gives a CI for any
statistic of the two samples (difference in means by default), resampling units within arms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from splitlab.core.stats.comparison import check_alpha, check_alternative
from splitlab.core.stats.sufficient import FloatArray

__all__ = ["BootstrapResult", "MannWhitneyResult", "bootstrap_ci", "mann_whitney"]


@dataclass(frozen=True)
class MannWhitneyResult:
    u: float
    """U statistic of the treatment sample."""
    z: float
    p_value: float
    prob_superiority: float
    """``P(treatment > control) + P(tie) / 2``, estimated by ``U / (n_t n_c)``."""
    status: str = "ok"


def _clean(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN; drop missing values first")
    return array


def mann_whitney(
    control: ArrayLike, treatment: ArrayLike, alternative: str = "two-sided"
) -> MannWhitneyResult:
    """Mann-Whitney U test of treatment against control (asymptotic, tie-corrected)."""
    alt = check_alternative(alternative)
    c = _clean(control, "control")
    t = _clean(treatment, "treatment")
    n_c, n_t = c.size, t.size
    if n_c < 1 or n_t < 1:
        nan = math.nan
        return MannWhitneyResult(nan, nan, nan, nan, "insufficient_data: empty arm")
    combined = np.concatenate([t, c])
    ranks = sps.rankdata(combined)
    u = float(ranks[:n_t].sum() - n_t * (n_t + 1) / 2.0)
    n = n_c + n_t
    _, tie_counts = np.unique(combined, return_counts=True)
    tie_term = float((tie_counts.astype(np.float64) ** 3 - tie_counts).sum())
    variance = n_t * n_c / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    superiority = u / (n_t * n_c)
    if variance <= 0:
        return MannWhitneyResult(u, math.nan, math.nan, superiority, "degenerate: all values tie")
    centred = u - n_t * n_c / 2.0
    sd = math.sqrt(variance)
    if alt == "two-sided":
        z = (abs(centred) - 0.5) / sd
        p = min(1.0, 2.0 * float(sps.norm.sf(z)))
        z = math.copysign(z, centred)
    elif alt == "greater":
        z = (centred - 0.5) / sd
        p = float(sps.norm.sf(z))
    else:
        z = (centred + 0.5) / sd
        p = float(sps.norm.cdf(z))
    return MannWhitneyResult(u, z, p, superiority)


@dataclass(frozen=True)
class BootstrapResult:
    effect: float
    ci_lower: float
    ci_upper: float
    se: float
    n_resamples: int
    alpha: float


def _mean_difference(control: FloatArray, treatment: FloatArray) -> float:
    return float(treatment.mean() - control.mean())


def bootstrap_ci(
    control: ArrayLike,
    treatment: ArrayLike,
    statistic: Callable[[FloatArray, FloatArray], float] | None = None,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    random_state: int | np.random.Generator | None = 0,
) -> BootstrapResult:
    """Percentile bootstrap CI of ``statistic(control, treatment)`` (two-sided).

    ``statistic`` defaults to the difference in means; resampling is within each arm.
    """
    alpha = check_alpha(alpha)
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be >= 100 for a usable interval; got {n_resamples}")
    c = _clean(control, "control")
    t = _clean(treatment, "treatment")
    stat = _mean_difference if statistic is None else statistic
    if c.size < 2 or t.size < 2:
        nan = math.nan
        return BootstrapResult(nan, nan, nan, nan, n_resamples, alpha)
    rng = np.random.default_rng(random_state)
    draws = np.empty(n_resamples)
    for i in range(n_resamples):
        draws[i] = stat(c[rng.integers(0, c.size, c.size)], t[rng.integers(0, t.size, t.size)])
    lower, upper = np.quantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapResult(
        stat(c, t), float(lower), float(upper), float(draws.std(ddof=1)), n_resamples, alpha
    )

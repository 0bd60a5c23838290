"""The test a metric definition names, and the effect size every comparison reports.

A metric names one test from the closed set :data:`TESTS`:

- ``welch``: Welch's t test of the means (the default), from sufficient statistics;
- ``z``: the two-proportion z test (pooled p-value, Wald CI) of a 0/1 metric, from counts;
- ``chi2``: Pearson's chi-square test of the 2x2 table of a 0/1 metric (no continuity
  correction, as ``scipy.stats.chi2_contingency(correction=False)``), from counts;
- ``mann_whitney``: the Mann-Whitney U test (``scipy.stats.mannwhitneyu``, asymptotic with
  continuity correction); its effects are the probability of superiority ``U / (n_t n_c)`` and
  the Hodges-Lehmann shift (median of the pairwise differences ``t_i - c_j``) with the
  Moses/Lehmann interval: order statistics of those differences at the ranks the normal
  approximation of U gives;
- ``bootstrap_bca`` / ``bootstrap_percentile``: a bootstrap CI (``scipy.stats.bootstrap``,
  resampling units within arms, seeded) of the difference of a quantile (the median unless told).

Each gives a :class:`MetricTestResult`; ``cohens_d`` is the standardized effect of any mean.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from splitlab.core.errors import ArgumentError
from splitlab.core.stats.comparison import (
    check_alpha,
    check_alternative,
    critical_value,
)
from splitlab.core.stats.means import welch
from splitlab.core.stats.proportions import two_proportion_z
from splitlab.core.stats.sufficient import FloatArray, Moments

__all__ = [
    "BOOTSTRAP_TESTS",
    "DEFAULT_QUANTILE",
    "DEFAULT_RESAMPLES",
    "PER_UNIT_TESTS",
    "PROPORTION_TESTS",
    "TESTS",
    "MetricTest",
    "MetricTestResult",
    "bootstrap_quantile",
    "check_quantile",
    "check_resamples",
    "check_test",
    "chi_square",
    "cohens_d",
    "hodges_lehmann",
    "kth_difference",
    "mann_whitney_test",
    "welch_test",
    "z_test",
]

MetricTest = Literal["welch", "z", "chi2", "mann_whitney", "bootstrap_bca", "bootstrap_percentile"]
TESTS: tuple[str, ...] = (
    "welch",
    "z",
    "chi2",
    "mann_whitney",
    "bootstrap_bca",
    "bootstrap_percentile",
)
PROPORTION_TESTS: tuple[str, ...] = ("z", "chi2")
"""Tests of a 0/1 metric only."""
PER_UNIT_TESTS: tuple[str, ...] = ("mann_whitney", "bootstrap_bca", "bootstrap_percentile")
"""Tests that need every unit's value (the others need sufficient statistics only)."""
BOOTSTRAP_TESTS: tuple[str, ...] = ("bootstrap_bca", "bootstrap_percentile")
DEFAULT_QUANTILE = 0.5
DEFAULT_RESAMPLES = 2000
MIN_RESAMPLES = 100
MAX_RESAMPLES = 100_000
_EXACT_PAIRS = 4_000_000
"""Up to this many pairs the Walsh differences are materialized; beyond, selected by bisection."""


def check_test(test: str, argument: str = "tests") -> MetricTest:
    """Validate a test name."""
    if test not in TESTS:
        raise ArgumentError(
            argument, f"{argument}: test must be one of {list(TESTS)}; got {test!r}"
        )
    return test  # type: ignore[return-value]


def check_quantile(quantile: float, argument: str = "quantiles") -> float:
    """Validate a quantile in (0, 1)."""
    if not (isinstance(quantile, int | float) and 0.0 < float(quantile) < 1.0):
        raise ArgumentError(
            argument,
            f"{argument}: quantile must lie in (0, 1), e.g. 0.5 (median); got {quantile!r}",
        )
    return float(quantile)


@dataclass(frozen=True)
class MetricTestResult:
    """One treatment against control under the metric's test."""

    test: str
    statistic: float
    """t (welch), z (z), chi-square (chi2), U of the treatment (mann_whitney), the observed
    quantile difference (bootstraps)."""
    p_value: float
    effect: float
    """Difference in means or proportions (welch, z, chi2), the Hodges-Lehmann shift
    (mann_whitney), the difference of the quantile (bootstraps)."""
    ci_lower: float
    ci_upper: float
    prob_superiority: float = math.nan
    """``P(treatment > control) + P(tie) / 2`` (mann_whitney only)."""
    quantile: float | None = None
    """The quantile compared (bootstraps only)."""
    n_resamples: int = 0
    """Bootstrap resamples (bootstraps only)."""
    status: str = "ok"


def _nan_result(test: str, status: str, **extra: float | int | None) -> MetricTestResult:
    nan = math.nan
    return MetricTestResult(test, nan, nan, nan, nan, nan, status=status, **extra)  # type: ignore[arg-type]


def welch_test(
    control: Moments, treatment: Moments, alpha: float = 0.05, alternative: str = "two-sided"
) -> MetricTestResult:
    """Welch's t test of the difference in means (``scipy.stats.ttest_ind(equal_var=False)``)."""
    c = welch(control, treatment, alpha, alternative)
    return MetricTestResult(
        "welch", c.statistic, c.p_value, c.effect, c.ci_lower, c.ci_upper, status=c.status
    )


def _successes(moments: Moments) -> float:
    return float(moments.sums[0]) if moments.n else 0.0


def z_test(
    control: Moments, treatment: Moments, alpha: float = 0.05, alternative: str = "two-sided"
) -> MetricTestResult:
    """Two-proportion z test of a 0/1 metric (pooled p-value, Wald CI)."""
    c = two_proportion_z(
        _successes(control), control.n, _successes(treatment), treatment.n, alpha, alternative
    )
    if c.status != "ok":
        return _nan_result("z", c.status)
    pooled = (_successes(control) + _successes(treatment)) / (control.n + treatment.n)
    pooled_se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
    z = c.effect / pooled_se if pooled_se > 0 else math.nan
    return MetricTestResult("z", z, c.p_value, c.effect, c.ci_lower, c.ci_upper, status=c.status)


def chi_square(
    control: Moments, treatment: Moments, alpha: float = 0.05, alternative: str = "two-sided"
) -> MetricTestResult:
    """Pearson's chi-square test of the 2x2 table (arm x success) of a 0/1 metric.

    Two-sided only (a one-sided question is the z test's). The effect and its CI are the
    difference in proportions with the Wald interval, as the z test reports them.
    """
    if check_alternative(alternative) != "two-sided":
        raise ArgumentError(
            "tests",
            f"tests: chi2 is two-sided; got alternative={alternative!r}: use test 'z' for a "
            "one-sided alternative",
        )
    wald = z_test(control, treatment, alpha, alternative)
    if wald.status != "ok":
        return _nan_result("chi2", wald.status)
    s_c, s_t = _successes(control), _successes(treatment)
    table = np.array([[s_c, control.n - s_c], [s_t, treatment.n - s_t]])
    if (table.sum(axis=0) == 0).any():
        return _nan_result("chi2", "degenerate: every unit has the same value")
    result = sps.chi2_contingency(table, correction=False)
    return MetricTestResult(
        "chi2",
        float(result.statistic),
        float(result.pvalue),
        wald.effect,
        wald.ci_lower,
        wald.ci_upper,
    )


def cohens_d(control: Moments, treatment: Moments, column: int = 0) -> float:
    """Cohen's d: the difference in means over the pooled standard deviation.

    ``s_pooled^2 = ((n_c - 1) s_c^2 + (n_t - 1) s_t^2) / (n_c + n_t - 2)``; NaN when an arm has
    fewer than 2 units, or the pooled variance is 0 or not finite (values near 1e300 overflow
    the sums of squares: the difference over an infinite SD would read as d = 0).
    """
    n_c, n_t = control.n, treatment.n
    if n_c < 2 or n_t < 2:
        return math.nan
    pooled = (
        float(control.comoment[column, column]) + float(treatment.comoment[column, column])
    ) / (n_c + n_t - 2)
    if not (pooled > 0 and math.isfinite(pooled)):
        return math.nan
    d = (float(treatment.mean[column]) - float(control.mean[column])) / math.sqrt(pooled)
    return d if math.isfinite(d) else math.nan


def _values(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(array).any():
        raise ArgumentError(name, f"{name} contains NaN; drop missing values first")
    return array


def _count_at_most(t: FloatArray, c: FloatArray, d: float) -> int:
    """How many differences ``t_i - c_j`` are <= ``d`` (``t``, ``c`` sorted)."""
    return int((c.size - np.searchsorted(c, t - d, side="left")).sum())


def kth_difference(
    treatment: ArrayLike, control: ArrayLike, k: int, exact_pairs: int = _EXACT_PAIRS
) -> float:
    """The ``k``-th smallest (1-based) of the ``n_t n_c`` differences ``t_i - c_j``.

    Up to ``exact_pairs`` pairs the differences are formed and partitioned; beyond, the value
    is bracketed by bisection on counts (each count is a ``searchsorted`` pass, so memory stays
    linear) until at most ``n_t + n_c`` differences remain in the bracket, which are formed.
    """
    t = np.sort(_values(treatment, "treatment"))
    c = np.sort(_values(control, "control"))
    total = t.size * c.size
    if not 1 <= k <= total:
        raise ArgumentError("k", f"k must lie in [1, {total}]; got {k}")
    if total <= exact_pairs:
        differences = np.subtract.outer(t, c).reshape(-1)
        return float(np.partition(differences, k - 1)[k - 1])
    # A bracket strictly around every difference, so its ends are no difference themselves
    # (a count at an end could otherwise round the other way than the difference).
    pad = 1e-9 * max(abs(float(t[0] - c[-1])), abs(float(t[-1] - c[0])), 1.0)
    lo = float(t[0] - c[-1]) - pad
    hi = float(t[-1] - c[0]) + pad
    limit = t.size + c.size
    while True:
        # invariant: count(<= lo) < k <= count(<= hi)
        starts = np.searchsorted(c, t - hi, side="left")
        stops = np.searchsorted(c, t - lo, side="left")
        inside = int((stops - starts).sum())
        if inside <= limit:
            break
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            return hi  # the bracket is one float wide: every difference in it is hi
        if _count_at_most(t, c, mid) >= k:
            hi = mid
        else:
            lo = mid
    below = _count_at_most(t, c, lo)
    # one more value each side of every row's window; the exact differences decide
    starts = np.maximum(starts - 1, 0)
    stops = np.minimum(stops + 1, c.size)
    lengths = stops - starts
    rows = np.repeat(np.arange(t.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    candidates = t[rows] - c[np.repeat(starts, lengths) + offsets]
    candidates = np.sort(candidates[(candidates > lo) & (candidates <= hi)])
    index = min(max(k - below - 1, 0), candidates.size - 1)
    return float(candidates[index])


def _median_difference(t: FloatArray, c: FloatArray) -> float:
    total = t.size * c.size
    upper = kth_difference(t, c, total // 2 + 1)
    if total % 2:
        return upper
    return 0.5 * (kth_difference(t, c, total // 2) + upper)


def _rank_variance(t: FloatArray, c: FloatArray) -> float:
    """Variance of U under the null hypothesis, with the tie correction."""
    n_t, n_c = t.size, c.size
    n = n_t + n_c
    _, counts = np.unique(np.concatenate([t, c]), return_counts=True)
    ties = float((counts.astype(np.float64) ** 3 - counts).sum())
    return n_t * n_c / 12.0 * ((n + 1) - ties / (n * (n - 1)))


def hodges_lehmann(
    control: ArrayLike,
    treatment: ArrayLike,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift and its Moses/Lehmann interval: ``(shift, lower, upper)``.

    The shift is the median of the ``n_t n_c`` differences ``t_i - c_j``. The interval's ends
    are the differences of rank ``k`` and ``n_t n_c + 1 - k`` with
    ``k = round(n_t n_c / 2 - z sqrt(var U))`` (``var U`` tie-corrected, ``z`` the normal
    quantile of the alternative), at least 1; a one-sided alternative opens the other end.
    """
    alpha = check_alpha(alpha)
    alt = check_alternative(alternative)
    t = _values(treatment, "treatment")
    c = _values(control, "control")
    if t.size < 1 or c.size < 1:
        return math.nan, math.nan, math.nan
    shift = _median_difference(t, c)
    total = t.size * c.size
    variance = _rank_variance(t, c) if t.size + c.size > 1 else 0.0
    if variance <= 0:
        return shift, math.nan, math.nan
    z = critical_value(alpha, math.inf, alt)
    k = max(1, round(total / 2.0 - z * math.sqrt(variance)))
    lower = kth_difference(t, c, k) if alt != "less" else -math.inf
    upper = kth_difference(t, c, total + 1 - k) if alt != "greater" else math.inf
    return shift, lower, upper


def mann_whitney_test(
    control: ArrayLike,
    treatment: ArrayLike,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> MetricTestResult:
    """Mann-Whitney U (``scipy.stats.mannwhitneyu(treatment, control, method="asymptotic")``),
    with the probability of superiority and the Hodges-Lehmann shift and interval."""
    alt = check_alternative(alternative)
    t = _values(treatment, "treatment")
    c = _values(control, "control")
    if t.size < 1 or c.size < 1:
        return _nan_result("mann_whitney", "insufficient_data: empty arm")
    if np.unique(np.concatenate([t, c])).size < 2:
        return _nan_result("mann_whitney", "degenerate: all values tie")
    test = sps.mannwhitneyu(t, c, alternative=alt, method="asymptotic", use_continuity=True)
    u = float(test.statistic)
    shift, lower, upper = hodges_lehmann(c, t, alpha, alt)
    return MetricTestResult(
        "mann_whitney",
        u,
        float(test.pvalue),
        shift,
        lower,
        upper,
        prob_superiority=u / (t.size * c.size),
    )


def check_resamples(n_resamples: int, argument: str = "resamples") -> int:
    """``n_resamples`` within [100, ``MAX_RESAMPLES``], or an ``ArgumentError`` naming
    ``argument``: fewer give no usable interval, more only cost time (at 100,000 the Monte
    Carlo error of a 95% interval's ends is already about 0.1% of its width, and an unbounded
    number once ran for minutes on one call)."""
    if not MIN_RESAMPLES <= n_resamples <= MAX_RESAMPLES:
        raise ArgumentError(
            argument,
            f"{argument} must be between {MIN_RESAMPLES} and {MAX_RESAMPLES:,} "
            f"(default {DEFAULT_RESAMPLES:,}); got {n_resamples}",
        )
    return n_resamples


def _resample_batch(n: int, n_resamples: int) -> int:
    """Resamples per vectorized call, so one call holds about 8 million values."""
    return max(1, min(n_resamples, 8_000_000 // max(n, 1)))


def bootstrap_quantile(
    control: ArrayLike,
    treatment: ArrayLike,
    quantile: float = DEFAULT_QUANTILE,
    method: Literal["bca", "percentile"] = "bca",
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    random_state: int = 0,
) -> MetricTestResult:
    """Bootstrap CI of ``quantile(treatment) - quantile(control)`` (``scipy.stats.bootstrap``).

    Units are resampled within arms from ``numpy.random.default_rng(random_state)``, so the
    same values in the same order and the same seed give the same interval. ``p_value`` is
    the bootstrap distribution's achieved significance level against 0 (two-sided: twice the
    smaller tail), i.e. the inversion of the percentile interval, with the Monte Carlo
    ``(count + 1) / (B + 1)`` so it is never 0; with BCa the interval, not the p-value,
    carries the bias and acceleration corrections.
    """
    q = check_quantile(quantile)
    alpha = check_alpha(alpha)
    alt = check_alternative(alternative)
    if method not in ("bca", "percentile"):
        raise ArgumentError("method", f"method must be 'bca' or 'percentile'; got {method!r}")
    check_resamples(n_resamples, "n_resamples")
    name = f"bootstrap_{method}"
    t = _values(treatment, "treatment")
    c = _values(control, "control")
    if t.size < 2 or c.size < 2:
        return _nan_result(name, "insufficient_data: n < 2 in an arm", quantile=q)

    def difference(c_: FloatArray, t_: FloatArray, axis: int = -1) -> FloatArray:
        return np.asarray(np.quantile(t_, q, axis=axis) - np.quantile(c_, q, axis=axis))

    observed = float(difference(c, t))
    with warnings.catch_warnings():
        # BCa's acceleration is 0/0 when every jackknife value ties (a quantile of integer
        # values): scipy warns and gives NaN ends, reported below as a status
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        res = sps.bootstrap(
            (c, t),
            difference,
            n_resamples=n_resamples,
            batch=_resample_batch(c.size + t.size, n_resamples),
            vectorized=True,
            paired=False,
            confidence_level=1.0 - alpha,
            alternative=alt,
            method="BCa" if method == "bca" else "percentile",
            rng=np.random.default_rng(random_state),
        )
    draws = np.asarray(res.bootstrap_distribution)
    # (count + 1) / (B + 1): the Monte Carlo p-value counts the observed sample as one draw,
    # so it is never 0 (a plain share of the draws said p = 0 when no draw crossed 0)
    low_tail = (float((draws <= 0.0).sum()) + 1.0) / (draws.size + 1.0)
    high_tail = (float((draws >= 0.0).sum()) + 1.0) / (draws.size + 1.0)
    if alt == "two-sided":
        p = min(1.0, 2.0 * min(low_tail, high_tail))
    elif alt == "greater":
        p = low_tail
    else:
        p = high_tail
    lower, upper = float(res.confidence_interval.low), float(res.confidence_interval.high)
    ends = [
        x for x, open_end in ((lower, alt == "less"), (upper, alt == "greater")) if not open_end
    ]
    status = "ok"
    if not all(math.isfinite(x) for x in ends):
        lower, upper = math.nan, math.nan
        status = (
            "degenerate: the BCa interval is undefined (the quantile's jackknife values all "
            "tie, as with integer values); use bootstrap_percentile"
            if method == "bca"
            else "degenerate: no interval"
        )
    if alt == "greater" and status == "ok":
        upper = math.inf
    elif alt == "less" and status == "ok":
        lower = -math.inf
    return MetricTestResult(
        name,
        observed,
        p,
        observed,
        lower,
        upper,
        quantile=q,
        n_resamples=n_resamples,
        status=status,
    )

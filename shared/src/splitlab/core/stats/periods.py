"""Allocation periods: SRM and effects that stay valid when the split changes mid-experiment.

A *period* is a stretch of an experiment with one allocation (variant weights, coverage...);
every unit belongs to the period of its first exposure and keeps its variant afterwards. Two
consequences when the weights differ between periods (a ramp from 50/50 to 10/90):

- the pooled counts are not a multinomial with the current weights, so the SRM check must
  expect ``sum_p N_p w_p`` (each period's new units times that period's weights) and use the
  variance of that sum of multinomials (:func:`period_srm_test`);
- pooling units confounds the variant with the period when the metric drifts (Simpson's
  paradox), so effects are estimated within each *stratum* (periods that share one split) and
  combined with the strata's shares of the units (:func:`combine_estimates`).

Periods with the same normalized weights form one stratum (:func:`allocation_strata`): within
it every unit had the same chance of each variant, so pooling is unbiased. When every period
shares one split there is a single stratum and every result is exactly the pooled one.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from splitlab.core.stats.comparison import ArmEstimate
from splitlab.core.stats.srm import DEFAULT_MIN_COUNT, DEFAULT_THRESHOLD, SRMResult, srm_test

__all__ = [
    "PeriodSRM",
    "allocation_strata",
    "combine_estimates",
    "normalized_weights",
    "period_srm_test",
    "stratum_shares",
]

Period = Hashable
WEIGHT_DIGITS = 12
"""Normalized weights equal to this many digits are the same split (one stratum)."""


def normalized_weights(
    weights: Mapping[str, float] | None, variants: Sequence[str]
) -> tuple[float, ...]:
    """``weights`` (default: equal) as shares of 1 in ``variants`` order; a variant the
    mapping does not name has weight 0."""
    if weights is None:
        return tuple(1.0 / len(variants) for _ in variants)
    raw = [float(weights.get(v, 0.0)) for v in variants]
    if any(not (w >= 0.0) or math.isinf(w) for w in raw):
        raise ValueError(f"period weights must be finite and >= 0; got {dict(weights)}")
    total = sum(raw)
    if not total > 0:
        raise ValueError(f"period weights must not all be 0; got {dict(weights)}")
    return tuple(w / total for w in raw)


def allocation_strata(
    periods: Sequence[Period],
    weights: Mapping[Period, Mapping[str, float] | None],
    variants: Sequence[str],
) -> list[list[Period]]:
    """Group ``periods`` (in the given order) by their normalized split: one list per stratum,
    strata in order of their first period."""
    keys: dict[tuple[float, ...], list[Period]] = {}
    for p in periods:
        if p not in weights:
            raise ValueError(
                f"period {p!r} has no weights; pass period_weights={{{p!r}: {{variant: w}}}}"
            )
        split = normalized_weights(weights[p], variants)
        keys.setdefault(tuple(round(w, WEIGHT_DIGITS) for w in split), []).append(p)
    return list(keys.values())


def stratum_shares(sizes: Sequence[int]) -> list[float]:
    """Each stratum's share of the units (the weights of the stratified estimator)."""
    total = sum(sizes)
    if total <= 0:
        raise ValueError("strata must hold at least one unit")
    return [s / total for s in sizes]


def combine_estimates(estimates: Sequence[ArmEstimate], shares: Sequence[float]) -> ArmEstimate:
    """One arm's stratified estimate: ``sum_s w_s mean_s`` with variance ``sum_s w_s^2 var_s``
    (strata are independent). The degrees of freedom are Welch-Satterthwaite's over the
    strata's parts, so :func:`~splitlab.core.stats.comparison.compare` ends with the
    Satterthwaite degrees of freedom of every (arm, stratum) part together."""
    if len(estimates) != len(shares) or not estimates:
        raise ValueError("estimates and shares must align and hold at least one stratum")
    if len(estimates) == 1:
        return estimates[0]
    mean = sum(w * e.mean for w, e in zip(shares, estimates, strict=True))
    parts = [w * w * e.variance for w, e in zip(shares, estimates, strict=True)]
    variance = sum(parts)
    denominator = 0.0
    for part, e in zip(parts, estimates, strict=True):
        if math.isinf(e.dof):
            continue
        denominator = math.nan if not e.dof > 0 else denominator + part * part / e.dof
    if math.isnan(denominator):
        dof = math.nan
    else:
        dof = math.inf if denominator == 0.0 else variance * variance / denominator
    return ArmEstimate(
        n=sum(e.n for e in estimates),
        mean=float(mean),
        variance=float(variance),
        dof=float(dof),
        mean_unadjusted=float(
            sum(w * e.mean_unadjusted for w, e in zip(shares, estimates, strict=True))
        ),
        variance_unadjusted=float(
            sum(w * w * e.variance_unadjusted for w, e in zip(shares, estimates, strict=True))
        ),
    )


# --- SRM --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodSRM:
    """One period's own SRM check (its new units against its weights)."""

    period: Period
    srm: SRMResult


@dataclass(frozen=True)
class PeriodSRMResult:
    combined: SRMResult
    """The test of the pooled counts against ``sum_p N_p w_p`` (the flag uses this)."""
    periods: list[PeriodSRM] = field(default_factory=list)


def period_srm_test(
    observed: Mapping[Period, Mapping[str, int]],
    weights: Mapping[Period, Mapping[str, float] | None],
    variants: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    min_count: int = DEFAULT_MIN_COUNT,
) -> PeriodSRMResult:
    """SRM across allocation periods: per period, and combined.

    Combined: expected counts ``E = sum_p N_p w_p``; the statistic is the Mahalanobis distance
    of the pooled counts from ``E`` under the covariance of a sum of independent multinomials,
    ``sum_p N_p (diag(w_p) - w_p w_p')`` (on the first ``k - 1`` variants: the counts sum to
    ``N``), chi-square with ``k - 1`` degrees of freedom. For one multinomial it is Pearson's
    statistic, so when every period shares one split the combined test is exactly
    :func:`~splitlab.core.stats.srm.srm_test` of the pooled counts (and that is what runs).
    """
    periods = list(observed)
    if not periods:
        raise ValueError("observed must hold at least one period's counts")
    names = [str(v) for v in variants]
    counts = {p: {v: int(observed[p].get(v, 0)) for v in names} for p in periods}
    split = {p: normalized_weights(weights.get(p), names) for p in periods}
    per_period = []
    for p in periods:
        present = {v: w for v, w in zip(names, split[p], strict=True) if w > 0}
        if len(present) >= 2 and all(counts[p][v] == 0 for v in names if v not in present):
            result = srm_test({v: counts[p][v] for v in present}, present, threshold, min_count)
        else:
            result = _mismatch_outside_split(counts[p], split[p], names, threshold, min_count)
        per_period.append(PeriodSRM(p, result))
    pooled = {v: sum(counts[p][v] for p in periods) for v in names}
    stray = [c for c in per_period if math.isinf(c.srm.statistic)]
    if stray:
        # Units in a variant that had no weight in their period: a mismatch whatever the
        # pooled counts say (the pooled test could not see it).
        first = stray[0].srm
        total = sum(pooled.values())
        status = "mismatch" if total >= min_count else "insufficient_data"
        combined = _stray_result(first, pooled, total, status)
        return PeriodSRMResult(combined, per_period)
    if len(set(split.values())) == 1 and all(w > 0 for w in split[periods[0]]):
        shared = dict(zip(names, split[periods[0]], strict=True))
        return PeriodSRMResult(srm_test(pooled, shared, threshold, min_count), per_period)
    return PeriodSRMResult(_mixture_test(counts, split, names, threshold, min_count), per_period)


def _stray_result(
    stray: SRMResult, pooled: Mapping[str, int], total: int, status: str
) -> SRMResult:
    """The combined result when a period holds units outside its split: p = 0."""
    return SRMResult(0.0, math.inf, dict(pooled), {}, stray.threshold, status, {})


def _mismatch_outside_split(
    counts: Mapping[str, int],
    split: Sequence[float],
    names: Sequence[str],
    threshold: float,
    min_count: int,
) -> SRMResult:
    """A period where a variant without weight has units, or with fewer than two weighted
    variants: units outside the split are a mismatch by construction (p = 0)."""
    total = sum(counts.values())
    weights = dict(zip(names, split, strict=True))
    expected = {v: total * weights[v] for v in names}
    stray = any(counts[v] > 0 and weights[v] == 0 for v in names)
    if stray:
        status, p, stat = ("mismatch" if total >= min_count else "insufficient_data"), 0.0, math.inf
    else:
        status, p, stat = "ok" if total >= min_count else "insufficient_data", 1.0, 0.0
    return SRMResult(p, stat, dict(counts), weights, threshold, status, expected)


def _mixture_test(
    counts: Mapping[Period, Mapping[str, int]],
    split: Mapping[Period, tuple[float, ...]],
    names: Sequence[str],
    threshold: float,
    min_count: int,
) -> SRMResult:
    k = len(names)
    pooled = np.array([sum(c[v] for c in counts.values()) for v in names], dtype=np.float64)
    expected = np.zeros(k)
    covariance = np.zeros((k, k))
    for p, c in counts.items():
        n = float(sum(c.values()))
        w = np.asarray(split[p])
        expected += n * w
        covariance += n * (np.diag(w) - np.outer(w, w))
    total = float(pooled.sum())
    observed = {v: int(x) for v, x in zip(names, pooled, strict=True)}
    shares = {
        v: float(e / total) if total else math.nan for v, e in zip(names, expected, strict=True)
    }
    expected_counts = {v: float(e) for v, e in zip(names, expected, strict=True)}
    if total == 0:
        return SRMResult(math.nan, math.nan, observed, shares, threshold, "insufficient_data")
    weighted = expected > 0
    if bool(((pooled > 0) & ~weighted).any()):
        status = "mismatch" if total >= min_count else "insufficient_data"
        return SRMResult(0.0, math.inf, observed, shares, threshold, status, expected_counts)
    idx = np.flatnonzero(weighted)
    d = (pooled - expected)[idx[:-1]]
    sigma = covariance[np.ix_(idx[:-1], idx[:-1])]
    dof = len(idx) - 1
    if dof < 1:
        return SRMResult(1.0, 0.0, observed, shares, threshold, "ok", expected_counts)
    statistic = float(d @ np.linalg.solve(sigma, d))
    p_value = float(special.chdtrc(dof, statistic))  # chi2.sf, without its overhead
    if total < min_count or float(expected[idx].min()) < 5:
        status = "insufficient_data"
    else:
        status = "mismatch" if p_value < threshold else "ok"
    return SRMResult(p_value, statistic, observed, shares, threshold, status, expected_counts)

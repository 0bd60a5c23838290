"""Choosing and applying a variance-reduction method on one metric's sufficient statistics.

Every arm is summarized by a :class:`~splitlab.core.stats.sufficient.Moments` over the columns
``[y, covariate_1, ..., covariate_p, (cupac prediction)]``. :func:`estimate_candidates` runs
each requested method on those statistics and returns, per method, every treatment's
:class:`~splitlab.core.stats.comparison.Comparison` against control; :func:`choose_method`
implements ``auto``: the valid method with the smallest estimated variance of the effect, never
worse than no adjustment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np

from splitlab.core.errors import ArgumentError
from splitlab.core.stats.comparison import ArmEstimate, Comparison, compare
from splitlab.core.stats.cuped import cuped_estimates
from splitlab.core.stats.means import mean_estimate
from splitlab.core.stats.proportions import two_proportion_z
from splitlab.core.stats.ratio import ratio_estimate
from splitlab.core.stats.ratio_cuped import ratio_cuped_estimates
from splitlab.core.stats.regression import lin_estimates
from splitlab.core.stats.sufficient import Moments

__all__ = [
    "ADJUSTED_METHODS",
    "METHODS",
    "MIN_VARIANCE_GAIN",
    "SIMPLICITY",
    "Candidate",
    "Method",
    "MetricKind",
    "best_single_covariate",
    "choose_method",
    "estimate_candidates",
    "parse_method",
    "ratio_cuped_detail",
]

MetricKind = Literal["mean", "proportion", "ratio"]
Method = Literal["none", "cuped", "regression", "cupac", "auto"]
"""The variance-reduction methods a caller may ask for (``auto`` picks one per metric)."""
METHODS: tuple[Method, ...] = get_args(Method)


def parse_method(value: str) -> Method:
    """``value`` as a :data:`Method`; :class:`~splitlab.core.errors.ArgumentError` otherwise."""
    for method in METHODS:
        if value == method:
            return method
    raise ArgumentError("method", f"method must be one of {list(METHODS)}; got {value!r}")


ADJUSTED_METHODS: tuple[str, ...] = ("cuped", "regression", "cupac")


@dataclass(frozen=True)
class Candidate:
    """One method's result on one metric: a comparison per treatment variant."""

    method: str
    comparisons: dict[str, Comparison]
    detail: str = ""
    """What was used, e.g. the CUPED covariate."""

    @property
    def variance(self) -> float:
        """Sum of the effect variances over treatments (the selection criterion of ``auto``)."""
        values = [c.variance for c in self.comparisons.values()]
        return float(sum(values)) if values and all(math.isfinite(v) for v in values) else math.nan

    @property
    def variance_reduction(self) -> float:
        """``1 - sum var_adjusted / sum var_unadjusted`` over treatments."""
        base = sum(c.variance_unadjusted for c in self.comparisons.values())
        var = self.variance
        if not (base > 0 and math.isfinite(var)):
            return math.nan
        return 1.0 - var / base


def best_single_covariate(arms: Sequence[Moments], covariates: Sequence[int], y: int = 0) -> int:
    """The covariate with the largest pooled within-arm squared correlation with ``y``."""
    if not covariates:
        raise ValueError("covariates must hold at least one column index")
    best, best_r2 = covariates[0], -1.0
    syy = sum(float(m.comoment[y, y]) for m in arms)
    for j in covariates:
        sxx = sum(float(m.comoment[j, j]) for m in arms)
        sxy = sum(float(m.comoment[j, y]) for m in arms)
        r2 = sxy * sxy / (sxx * syy) if sxx > 0 and syy > 0 else 0.0
        if r2 > best_r2:
            best, best_r2 = j, r2
    return best


def ratio_cuped_detail(covariates: Sequence[int], covariate_names: Sequence[str]) -> str:
    """What ratio CUPED used: every covariate, one pooled slope each (columns 0-1 are the
    numerator and denominator, so covariate ``j`` is ``covariate_names[j - 2]``)."""
    labels = [
        covariate_names[j - 2] if 0 <= j - 2 < len(covariate_names) else f"column {j}"
        for j in covariates
    ]
    return f"delta method on the linearised ratio, covariate(s) {', '.join(labels)}"


def _compare_all(
    estimates: Sequence[ArmEstimate], names: Sequence[str], alpha: float, alternative: str
) -> dict[str, Comparison]:
    control = estimates[0]
    return {
        name: compare(control, est, alpha, alternative)
        for name, est in zip(names[1:], estimates[1:], strict=True)
    }


def estimate_candidates(
    arms: Sequence[Moments],
    variants: Sequence[str],
    kind: MetricKind,
    methods: Sequence[str],
    covariates: Sequence[int] = (),
    cupac: int | None = None,
    covariate_names: Sequence[str] = (),
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> dict[str, Candidate]:
    """Run ``methods`` on statistics ordered like ``variants`` (control first).

    ``covariates`` are the column indices of the pre-period covariates, ``cupac`` the index of
    the out-of-fold prediction column; column 0 is the metric (for ratios: columns 0 and 1
    are numerator and denominator). Methods not applicable to the data are skipped.
    """
    if len(arms) != len(variants) or len(arms) < 2:
        raise ValueError("arms and variants must align and hold control plus >= 1 treatment")
    out: dict[str, Candidate] = {}
    for method in methods:
        if method == "none":
            if kind == "ratio":
                est = [ratio_estimate(m) for m in arms]
                out[method] = Candidate(method, _compare_all(est, variants, alpha, alternative))
            elif kind == "proportion":
                comps = {}
                c = arms[0]
                for name, t in zip(variants[1:], arms[1:], strict=True):
                    comps[name] = two_proportion_z(
                        float(c.sums[0]), c.n, float(t.sums[0]), t.n, alpha, alternative
                    )
                out[method] = Candidate(method, comps, "two-proportion z")
            else:
                est = [mean_estimate(m) for m in arms]
                out[method] = Candidate(method, _compare_all(est, variants, alpha, alternative))
        elif kind == "ratio":
            # Columns 0 and 1 are the ratio's parts; covariates follow them.
            xs = [j for j in covariates if j > 1]
            if method == "cuped" and xs:
                est = ratio_cuped_estimates(arms, xs)
                out[method] = Candidate(
                    method,
                    _compare_all(est, variants, alpha, alternative),
                    ratio_cuped_detail(xs, covariate_names),
                )
        elif method == "cuped" and covariates:
            j = best_single_covariate(arms, covariates)
            est = cuped_estimates(arms, x=j)
            label = covariate_names[j - 1] if len(covariate_names) >= j else f"column {j}"
            out[method] = Candidate(
                method, _compare_all(est, variants, alpha, alternative), f"covariate {label}"
            )
        elif method == "regression" and covariates:
            est = lin_estimates(arms, covariates=list(covariates))
            out[method] = Candidate(
                method,
                _compare_all(est, variants, alpha, alternative),
                f"{len(covariates)} covariate(s), separate slopes per arm",
            )
        elif method == "cupac" and cupac is not None:
            est = lin_estimates(arms, covariates=[cupac])
            out[method] = Candidate(
                method, _compare_all(est, variants, alpha, alternative), "out-of-fold prediction"
            )
    if kind == "proportion" and "none" in out:
        # Keep the plain proportion as the unadjusted baseline of the adjusted methods.
        base = {n: c.variance_unadjusted for n, c in out["none"].comparisons.items()}
        for name, cand in list(out.items()):
            if name != "none":
                comps = {
                    v: replace(c, variance_unadjusted=base[v]) for v, c in cand.comparisons.items()
                }
                out[name] = replace(cand, comparisons=comps)
    return out


MIN_VARIANCE_GAIN = 0.01
"""``auto`` takes a more complex method only when it lowers the variance of the effect by at
least this share of the unadjusted variance (one percentage point of variance reduction) more
than the simpler one; see docs/statistics.md."""
SIMPLICITY: tuple[str, ...] = ("none", "cuped", "regression", "cupac")
"""Methods from the simplest (fewest fitted quantities) to the most complex."""


def choose_method(candidates: dict[str, Candidate]) -> tuple[str, str]:
    """``auto``: the simplest valid candidate whose variance reduction is within
    :data:`MIN_VARIANCE_GAIN` of the best one's, never worse than ``none``.

    Returns the method and the stated reason.
    """
    if "none" not in candidates:
        raise ValueError("candidates must include 'none' (the fallback)")
    baseline = candidates["none"].variance
    valid = {m: c.variance for m, c in candidates.items() if np.isfinite(c.variance)}
    adjusted = {m: v for m, v in valid.items() if m != "none"}
    if not adjusted:
        return "none", "no covariate method applies to this metric; unadjusted"
    best = min(adjusted, key=lambda m: adjusted[m])
    if not math.isfinite(baseline):
        return best, f"{best}: unadjusted variance undefined"
    if adjusted[best] >= baseline:
        return "none", "no covariate method reduced the variance; fell back to unadjusted"
    gain = {m: 1.0 - v / baseline for m, v in valid.items()} if baseline > 0 else {}
    if gain:
        gain["none"] = 0.0
        ranked = sorted(gain, key=lambda m: SIMPLICITY.index(m) if m in SIMPLICITY else 99)
        simplest = next(m for m in ranked if gain[m] >= gain[best] - MIN_VARIANCE_GAIN)
        if simplest == "none":
            return "none", (
                f"{best} reduced the variance by {gain[best]:.1%}, less than the "
                f"{MIN_VARIANCE_GAIN:.0%} threshold; unadjusted"
            )
        if simplest != best:
            return simplest, (
                f"{simplest} ({gain[simplest]:.1%} reduction) is within "
                f"{MIN_VARIANCE_GAIN:.0%} of {best} ({gain[best]:.1%}); the simpler method"
            )
    others = ", ".join(f"{m} {candidates[m].variance_reduction:.1%}" for m in adjusted if m != best)
    reason = (
        f"{best} has the smallest variance ({candidates[best].variance_reduction:.1%} reduction)"
    )
    return best, reason + (f"; others: {others}" if others else "")

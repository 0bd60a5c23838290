"""Every method on strata of allocation periods: per-stratum estimates, combined by share.

With strata ``s`` (periods that share one split;
:func:`splitlab.core.stats.periods.allocation_strata`) and ``N_s`` units in stratum ``s`` (all
variants), each arm's estimate is ``sum_s w_s est_s`` with ``w_s = N_s / sum N_s`` and variance
``sum_s w_s^2 var_s``, where ``est_s`` is the method's own estimate within the stratum (plain mean,
proportion, delta-method ratio, CUPED with the stratum's slope, Lin's regression or CUPAC at the
stratum's covariate means). A treatment is compared with control over the strata where both have at
least two units (a stratum without one of them says nothing about that contrast); ``w_s`` is
renormalized over those. One stratum is exactly
:func:`~splitlab.core.stats.adjustment.estimate_candidates`.

Proportions keep the two-proportion z: the CI uses the combined Wald variance, the p-value the
combined variance under the null, ``sum_s w_s^2 p_s (1 - p_s) (1/n_c,s + 1/n_t,s)`` with
``p_s`` the stratum's pooled proportion (the classical test when there is one stratum).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from splitlab.core.stats.adjustment import (
    Candidate,
    MetricKind,
    best_single_covariate,
    estimate_candidates,
    ratio_cuped_detail,
)
from splitlab.core.stats.comparison import (
    ArmEstimate,
    Comparison,
    check_alternative,
    compare,
    p_value_from_statistic,
)
from splitlab.core.stats.cuped import cuped_estimates
from splitlab.core.stats.means import mean_estimate
from splitlab.core.stats.periods import combine_estimates, stratum_shares
from splitlab.core.stats.proportions import proportion_from_moments
from splitlab.core.stats.ratio import ratio_estimate
from splitlab.core.stats.ratio_cuped import ratio_cuped_estimates
from splitlab.core.stats.regression import lin_estimates
from splitlab.core.stats.sufficient import Moments

__all__ = ["stratified_candidates"]

Estimator = Callable[[Sequence[Moments]], list[ArmEstimate]]


def _per_arm(estimate: Callable[[Moments], ArmEstimate]) -> Estimator:
    return lambda arms: [estimate(m) for m in arms]


def _combined(
    strata: Sequence[Sequence[Moments]],
    variants: Sequence[str],
    estimator: Estimator,
    alpha: float,
    alternative: str,
    proportion: bool = False,
) -> dict[str, Comparison]:
    estimates = [estimator(arms) for arms in strata]
    sizes = [sum(m.n for m in arms) for arms in strata]
    out: dict[str, Comparison] = {}
    for i, name in enumerate(variants[1:], start=1):
        usable = [s for s, arms in enumerate(strata) if arms[0].n >= 2 and arms[i].n >= 2]
        if not usable:
            usable = list(range(len(strata)))  # compare() reports the missing data
        shares = stratum_shares([sizes[s] for s in usable]) if sum(sizes) else [1.0] * len(usable)
        control = combine_estimates([estimates[s][0] for s in usable], shares)
        treatment = combine_estimates([estimates[s][i] for s in usable], shares)
        comparison = compare(control, treatment, alpha, alternative)
        if proportion and comparison.status == "ok":
            null_variance = 0.0
            for w, s in zip(shares, usable, strict=True):
                c, t = strata[s][0], strata[s][i]
                p = (float(c.sums[0]) + float(t.sums[0])) / (c.n + t.n)
                null_variance += w * w * p * (1.0 - p) * (1.0 / c.n + 1.0 / t.n)
            if null_variance > 0:
                z = comparison.effect / math.sqrt(null_variance)
                comparison = replace(
                    comparison,
                    p_value=p_value_from_statistic(z, math.inf, check_alternative(alternative)),
                )
        out[name] = comparison
    return out


def stratified_candidates(
    strata: Sequence[Sequence[Moments]],
    variants: Sequence[str],
    kind: MetricKind,
    methods: Sequence[str],
    covariates: Sequence[int] = (),
    cupac: int | None = None,
    covariate_names: Sequence[str] = (),
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> dict[str, Candidate]:
    """:func:`~splitlab.core.stats.adjustment.estimate_candidates` on strata: ``strata[s]`` holds
    stratum ``s``'s statistics ordered like ``variants`` (control first)."""
    if not strata:
        raise ValueError("strata must hold at least one stratum's statistics")
    if len(strata) == 1:
        return estimate_candidates(
            strata[0],
            variants,
            kind,
            methods,
            covariates,
            cupac,
            covariate_names,
            alpha,
            alternative,
        )
    if any(len(arms) != len(variants) for arms in strata) or len(variants) < 2:
        raise ValueError("every stratum must align with variants (control plus >= 1 treatment)")
    out: dict[str, Candidate] = {}
    for method in methods:
        if method == "none":
            if kind == "ratio":
                comps = _combined(strata, variants, _per_arm(ratio_estimate), alpha, alternative)
                out[method] = Candidate(method, comps)
            elif kind == "proportion":
                comps = _combined(
                    strata, variants, _per_arm(proportion_from_moments), alpha, alternative, True
                )
                out[method] = Candidate(method, comps, "two-proportion z, stratified")
            else:
                comps = _combined(strata, variants, _per_arm(mean_estimate), alpha, alternative)
                out[method] = Candidate(method, comps)
        elif kind == "ratio":
            xs = [j for j in covariates if j > 1]  # columns 0-1: the ratio's parts
            if method == "cuped" and xs:
                comps = _combined(
                    strata,
                    variants,
                    partial(ratio_cuped_estimates, covariates=xs),
                    alpha,
                    alternative,
                )
                out[method] = Candidate(method, comps, ratio_cuped_detail(xs, covariate_names))
        elif method == "cuped" and covariates:
            # One covariate for every stratum: the largest within-(arm, stratum) correlation.
            j = best_single_covariate([m for arms in strata for m in arms], covariates)
            label = covariate_names[j - 1] if len(covariate_names) >= j else f"column {j}"
            comps = _combined(strata, variants, partial(cuped_estimates, x=j), alpha, alternative)
            out[method] = Candidate(method, comps, f"covariate {label}")
        elif method == "regression" and covariates:
            xs = list(covariates)
            comps = _combined(
                strata,
                variants,
                partial(lin_estimates, covariates=xs),
                alpha,
                alternative,
            )
            out[method] = Candidate(
                method, comps, f"{len(covariates)} covariate(s), separate slopes per arm"
            )
        elif method == "cupac" and cupac is not None:
            column = cupac
            comps = _combined(
                strata,
                variants,
                partial(lin_estimates, covariates=[column]),
                alpha,
                alternative,
            )
            out[method] = Candidate(method, comps, "out-of-fold prediction")
    if kind == "proportion" and "none" in out:
        base = {n: c.variance_unadjusted for n, c in out["none"].comparisons.items()}
        for name, cand in list(out.items()):
            if name != "none":
                comps = {
                    v: replace(c, variance_unadjusted=base[v]) for v, c in cand.comparisons.items()
                }
                out[name] = replace(cand, comparisons=comps)
    return out

"""Sequential sample ratio mismatch: an always-valid test over the stream of exposures.

The Dirichlet-multinomial mixture sequential probability ratio test of Lindon & Malek (2022,
"Anytime-valid inference for multinomial count data"). Under the null every unit falls in
variant ``i`` with the configured probability ``theta_i``; the alternative mixes multinomials
over a Dirichlet prior ``alpha = concentration * theta`` (centred on the configured split). After
``N`` units with counts ``x`` the Bayes factor is

    BF = Gamma(A) / Gamma(A + N) * prod_i Gamma(alpha_i + x_i) / Gamma(alpha_i)
         / prod_i theta_i^x_i,          A = sum_i alpha_i = concentration,

a nonnegative martingale under the null (it depends on the counts only: the order of the units
cancels). By Ville's inequality ``P(sup_N BF_N >= 1/a) <= a``, so ``min(1, 1/BF)`` is a p-value
that stays valid however often it is read, and its running minimum over the looks
(:func:`running_p_values`) is the monotone always-valid p-value the paper reports.

Allocation periods (the split changed): each period's units are tested against that period's
weights with a mixture of their own, and the Bayes factors multiply (the periods follow each
other in time, so the product is again a test martingale). A variant with weight 0 in a period
that holds units there is a mismatch by construction (p = 0).

The alternative is a mixture over several concentrations ``c`` (equal weights; the mean of
martingales is a martingale, so validity holds). ``c`` sets how far from the configured split
an alternative looks: the prior's standard deviation of a share ``theta`` is
``sqrt(theta (1 - theta) / (c + 1))``. One concentration tunes the test to one size of mismatch:
10,000 (the authors' reference implementation; SD 0.005 at 50/50) finds a one-point mismatch
well but flags an arm that gets no units at all only after 380 units. The default mixture
``DEFAULT_CONCENTRATIONS`` (100 to 100,000) crosses the threshold for that empty arm after 50
units (the status waits for the 100-unit gate) and pays for it with a factor of at most 4 on
the Bayes factor of a small mismatch (docs/studies/sequential_srm.md).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from splitlab.core.errors import ArgumentError
from splitlab.core.stats.periods import WEIGHT_DIGITS, normalized_weights
from splitlab.core.stats.srm import DEFAULT_MIN_COUNT, DEFAULT_THRESHOLD
from splitlab.core.stats.sufficient import FloatArray

__all__ = [
    "DEFAULT_CONCENTRATIONS",
    "SequentialSRMResult",
    "log_bayes_factor",
    "mix_log_bayes_factors",
    "period_sequential_srm_test",
    "running_p_values",
    "sequential_srm_test",
]

DEFAULT_CONCENTRATIONS: tuple[float, ...] = (100.0, 1_000.0, 10_000.0, 100_000.0)
"""Dirichlet concentrations the alternative mixes (prior share SD 0.05 to 0.0016 at 50/50)."""

Concentrations = float | Sequence[float]
"""One Dirichlet concentration, or several to mix with equal weights."""


@dataclass(frozen=True)
class SequentialSRMResult:
    """The always-valid SRM test at the current counts."""

    p_value: float
    """``min(1, 1/BF)``: valid at any look, however many looks were taken."""
    log_bayes_factor: float
    observed: dict[str, int]
    expected_weights: dict[str, float]
    """The configured shares (across periods: each period's units at its own shares, pooled)."""
    threshold: float
    concentrations: tuple[float, ...]
    status: str
    """``ok``, ``mismatch`` or ``insufficient_data`` (fewer than ``min_count`` units)."""

    @property
    def mismatch(self) -> bool:
        return self.status == "mismatch"

    def to_dict(self) -> dict[str, object]:
        return {
            "p_value": _json(self.p_value),
            "log_bayes_factor": _json(self.log_bayes_factor),
            "concentrations": list(self.concentrations),
            "threshold": self.threshold,
            "status": self.status,
        }


def _json(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _concentrations(concentrations: Concentrations) -> tuple[float, ...]:
    values = (
        (float(concentrations),)
        if isinstance(concentrations, int | float)
        else tuple(float(c) for c in concentrations)
    )
    if not values or not all(math.isfinite(c) and c > 0 for c in values):
        default = ", ".join(f"{c:g}" for c in DEFAULT_CONCENTRATIONS)
        raise ArgumentError(
            "concentrations",
            f"concentrations must be finite numbers > 0 (default {default}); "
            f"got {concentrations!r}",
        )
    return values


def _check(threshold: float, min_count: int) -> None:
    if not 0.0 < threshold < 1.0:
        raise ArgumentError(
            "threshold", f"threshold must be in (0, 1), e.g. 0.001; got {threshold}"
        )
    if min_count < 0:
        raise ArgumentError("min_count", f"min_count must be >= 0; got {min_count}")


def log_bayes_factor(
    counts: ArrayLike,
    null: FloatArray | Sequence[float],
    concentrations: Concentrations = DEFAULT_CONCENTRATIONS,
) -> FloatArray:
    """Log Bayes factor of the Dirichlet-multinomial mixture against the multinomial ``null``.

    ``counts`` has shape ``(..., k)`` (cumulative counts per variant; vectorised over the
    leading axes); ``null`` the ``k`` configured shares, all > 0 and summing to 1; several
    ``concentrations`` are mixed with equal weights.
    """
    values = _concentrations(concentrations)
    components = np.stack([_log_bayes_factor(counts, null, c) for c in values])
    return mix_log_bayes_factors(components)


def mix_log_bayes_factors(components: FloatArray) -> FloatArray:
    """Equal-weight mixture of Bayes factors given as logs along the first axis (one row per
    concentration), as a log."""
    return np.asarray(
        special.logsumexp(components, axis=0) - math.log(components.shape[0]), dtype=np.float64
    )


def _log_bayes_factor(
    counts: ArrayLike, null: FloatArray | Sequence[float], concentration: float
) -> FloatArray:
    x = np.asarray(counts, dtype=np.float64)
    theta = np.asarray(null, dtype=np.float64)
    alpha = concentration * theta
    n = x.sum(axis=-1)
    return np.asarray(
        special.gammaln(concentration)
        - special.gammaln(concentration + n)
        + (special.gammaln(alpha + x) - special.gammaln(alpha)).sum(axis=-1)
        - (x * np.log(theta)).sum(axis=-1),
        dtype=np.float64,
    )


def running_p_values(
    cumulative_counts: FloatArray | Sequence[Sequence[float]],
    null: FloatArray | Sequence[float],
    concentrations: Concentrations = DEFAULT_CONCENTRATIONS,
) -> FloatArray:
    """The monotone always-valid p-value after each look: ``min(1, min_{m <= t} 1/BF_m)``.

    ``cumulative_counts`` has shape ``(..., looks, k)``: the counts per variant at each look.
    """
    log_bf = log_bayes_factor(cumulative_counts, null, concentrations)
    p = np.minimum(1.0, np.exp(-np.maximum(log_bf, -700.0)))
    return np.asarray(np.minimum.accumulate(p, axis=-1), dtype=np.float64)


def _counts(observed: Mapping[str, int]) -> dict[str, int]:
    counts = {str(k): int(v) for k, v in observed.items()}
    if any(v < 0 for v in counts.values()):
        raise ArgumentError("observed", f"observed counts must be >= 0; got {counts}")
    return counts


def sequential_srm_test(
    observed: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    concentrations: Concentrations = DEFAULT_CONCENTRATIONS,
    min_count: int = DEFAULT_MIN_COUNT,
) -> SequentialSRMResult:
    """Always-valid SRM test of ``observed`` counts against ``weights`` (default: equal)."""
    if len(observed) < 2:
        raise ArgumentError(
            "observed",
            f"observed must hold counts for at least 2 variants; got {len(observed)}",
        )
    counts = _counts(observed)
    if weights is not None and set(map(str, weights)) != set(counts):
        raise ArgumentError(
            "weights",
            f"weights must name exactly the observed variants {sorted(counts)}; "
            f"got {sorted(map(str, weights))}",
        )
    split = None if weights is None else {str(k): float(v) for k, v in weights.items()}
    return period_sequential_srm_test(
        {0: counts}, {0: split}, list(counts), threshold, concentrations, min_count
    )


def period_sequential_srm_test(
    observed: Mapping[Hashable, Mapping[str, int]],
    weights: Mapping[Hashable, Mapping[str, float] | None],
    variants: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    concentrations: Concentrations = DEFAULT_CONCENTRATIONS,
    min_count: int = DEFAULT_MIN_COUNT,
) -> SequentialSRMResult:
    """Always-valid SRM across allocation periods: periods that share one split pool their
    counts (every period with the same split: exactly :func:`sequential_srm_test` of the
    pooled counts); for each concentration the splits' Bayes factors multiply, and the products
    are mixed."""
    _check(threshold, min_count)
    values = _concentrations(concentrations)
    if not observed:
        raise ArgumentError("observed", "observed must hold at least one period's counts")
    names = [str(v) for v in variants]
    by_split: dict[tuple[float, ...], tuple[FloatArray, FloatArray]] = {}
    stray = False
    expected = np.zeros(len(names))
    first_split: FloatArray | None = None
    pooled = dict.fromkeys(names, 0)
    for period, period_counts in observed.items():
        counts = _counts(period_counts)
        unknown = sorted(set(counts) - set(names))
        if unknown:
            raise ArgumentError(
                "observed", f"period {period!r} counts variants {unknown} outside {names}"
            )
        if period not in weights:
            raise ArgumentError(
                "weights",
                f"period {period!r} has no weights; pass {{{period!r}: {{variant: weight}}}}",
            )
        try:
            split = np.asarray(normalized_weights(weights[period], names))
        except ValueError as exc:
            raise ArgumentError("weights", str(exc)) from None
        if first_split is None:
            first_split = split
        x = np.array([counts.get(v, 0) for v in names], dtype=np.float64)
        for v, c in zip(names, x, strict=True):
            pooled[v] += int(c)
        expected += x.sum() * split
        weighted = split > 0
        if bool((x[~weighted] > 0).any()):
            stray = True
            continue
        key = tuple(round(float(w), WEIGHT_DIGITS) for w in split)
        first, so_far = by_split.get(key, (split, np.zeros(len(names))))
        by_split[key] = (first, so_far + x)
    per_concentration = np.zeros(len(values))
    for split, x in by_split.values():
        weighted = split > 0
        if int(weighted.sum()) >= 2:
            null = split[weighted] / split[weighted].sum()
            per_concentration += [_log_bayes_factor(x[weighted], null, c) for c in values]
    log_bf = float(mix_log_bayes_factors(per_concentration[:, None])[0])
    total = sum(pooled.values())
    base = first_split if first_split is not None else expected
    shares = {
        v: float(e / total) if total else float(w)
        for v, e, w in zip(names, expected, base, strict=True)
    }
    if stray:
        log_bf, p = math.inf, 0.0
    else:
        p = float(min(1.0, math.exp(-max(log_bf, -700.0))))
    if total == 0 or total < min_count:
        status = "insufficient_data"
    else:
        status = "mismatch" if p < threshold else "ok"
    return SequentialSRMResult(
        p_value=p,
        log_bayes_factor=log_bf,
        observed=pooled,
        expected_weights=shares,
        threshold=threshold,
        concentrations=values,
        status=status,
    )

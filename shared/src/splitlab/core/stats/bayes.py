"""Bayesian summaries of an effect under a Gaussian approximation.

With a flat prior (or a Gaussian prior on the absolute effect) and the normal likelihood of
the estimate, the posterior of the effect is Gaussian. "Chance to beat control" is the
posterior probability that the effect is positive (or negative when lower is better), and the
expected loss is how much one gives up, on average, by shipping if the effect is in fact worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

__all__ = ["BayesResult", "gaussian_posterior"]


@dataclass(frozen=True)
class BayesResult:
    posterior_mean: float
    posterior_sd: float
    chance_to_beat_control: float
    expected_loss: float
    """``E[max(0, -effect)]`` (or ``E[max(0, effect)]`` when lower is better)."""


def gaussian_posterior(
    effect: float,
    se: float,
    prior_mean: float = 0.0,
    prior_sd: float | None = None,
    lower_is_better: bool = False,
) -> BayesResult:
    """Posterior summaries for an estimate ``effect`` with standard error ``se``."""
    if prior_sd is not None and not prior_sd > 0:
        raise ValueError(f"prior_sd must be > 0 or None (flat prior); got {prior_sd}")
    if not (math.isfinite(effect) and math.isfinite(se)) or se <= 0:
        nan = math.nan
        return BayesResult(nan, nan, nan, nan)
    if prior_sd is None:
        mean, sd = effect, se
    else:
        precision = 1.0 / se**2 + 1.0 / prior_sd**2
        mean = (effect / se**2 + prior_mean / prior_sd**2) / precision
        sd = math.sqrt(1.0 / precision)
    signed = -mean if lower_is_better else mean
    z = signed / sd
    chance = float(sps.norm.cdf(z))
    # E[max(0, -X)] for X ~ N(signed, sd^2).
    loss = float(sd * sps.norm.pdf(z) - signed * sps.norm.cdf(-z))
    return BayesResult(mean, sd, chance, loss)

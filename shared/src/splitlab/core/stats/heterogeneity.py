"""Heterogeneity of an effect across disjoint groups: Cochran's Q and I^2 (pure).

Given per-group effects ``theta_i`` with standard errors ``se_i`` (the segments of one
experiment: disjoint units, so independent estimates), the fixed-effect pooled effect is
``theta_bar = sum w_i theta_i / sum w_i`` with ``w_i = 1 / se_i^2``, Cochran's
``Q = sum w_i (theta_i - theta_bar)^2`` and, under the null of one common effect, ``Q`` is
chi-square with ``k - 1`` degrees of freedom (``k`` groups with a finite, positive SE).
``I^2 = max(0, (Q - df) / Q)``: the share of the spread of the estimates beyond what their
sampling error explains (Higgins & Thompson 2002).

What it assumes: independent groups, each effect approximately normal with its SE known
(the SEs are estimates: at small groups Q is anti-conservative, which is one reason the
segment analysis warns about segments below a minimum size). Groups whose SE is not finite or
zero are left out of the test and counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Heterogeneity", "cochran_q"]


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q test of one common effect across groups."""

    q: float
    df: int
    p_value: float
    i_squared: float
    """Share of the variation beyond sampling error, in [0, 1] (NaN with fewer than 2 groups)."""
    pooled_effect: float
    """The fixed-effect (inverse-variance) pooled effect."""
    groups: int
    """Groups in the test (finite effect and positive finite SE)."""
    left_out: int
    """Groups left out for a missing effect or SE."""


def cochran_q(effects: Sequence[float], ses: Sequence[float]) -> Heterogeneity:
    """Cochran's Q of ``effects`` with standard errors ``ses`` (same length)."""
    theta = np.asarray(effects, dtype=np.float64).reshape(-1)
    se = np.asarray(ses, dtype=np.float64).reshape(-1)
    if theta.shape != se.shape:
        raise ValueError(
            f"effects and ses must have the same length; got {theta.size} and {se.size}"
        )
    usable = np.isfinite(theta) & np.isfinite(se) & (se > 0)
    theta, se = theta[usable], se[usable]
    k = int(theta.size)
    left_out = int(usable.size - k)
    if k < 2:
        pooled = float(theta[0]) if k == 1 else math.nan
        return Heterogeneity(math.nan, max(k - 1, 0), math.nan, math.nan, pooled, k, left_out)
    w = 1.0 / se**2
    pooled = float(np.sum(w * theta) / np.sum(w))
    q = float(np.sum(w * (theta - pooled) ** 2))
    df = k - 1
    p = float(stats.chi2.sf(q, df))
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return Heterogeneity(q, df, p, i2, pooled, k, left_out)

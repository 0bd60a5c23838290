"""Multiple comparisons: Bonferroni and Holm (family-wise error), Benjamini-Hochberg (FDR).

Adjusted p-values are returned in the input order; NaN p-values are left out of the family
and stay NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from splitlab.core.stats.sufficient import FloatArray

__all__ = [
    "CORRECTIONS",
    "Correction",
    "adjust_p_values",
    "benjamini_hochberg",
    "bonferroni",
    "holm",
]

Correction = Literal["holm", "bonferroni", "benjamini-hochberg", "none"]
"""Multiple-comparison corrections of the treatments' p-values within a metric."""
CORRECTIONS: tuple[Correction, ...] = get_args(Correction)


def _split(p_values: Sequence[float]) -> tuple[FloatArray, FloatArray, np.ndarray]:
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    finite = ~np.isnan(p)
    return p, p[finite], finite


def bonferroni(p_values: Sequence[float]) -> FloatArray:
    """``min(1, m p)``."""
    p, valid, mask = _split(p_values)
    out = np.full_like(p, np.nan)
    out[mask] = np.minimum(1.0, valid * valid.size)
    return out


def holm(p_values: Sequence[float]) -> FloatArray:
    """Holm's step-down: ``max_{j<=i} min(1, (m - j + 1) p_(j))`` in sorted order."""
    p, valid, mask = _split(p_values)
    m = valid.size
    order = np.argsort(valid, kind="mergesort")
    stepped = np.maximum.accumulate((m - np.arange(m)) * valid[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    out = np.full_like(p, np.nan)
    out[mask] = adjusted
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> FloatArray:
    """Benjamini-Hochberg step-up: ``min_{j>=i} min(1, m p_(j) / j)`` in sorted order."""
    p, valid, mask = _split(p_values)
    m = valid.size
    order = np.argsort(valid, kind="mergesort")
    scaled = valid[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    out = np.full_like(p, np.nan)
    out[mask] = adjusted
    return out


def adjust_p_values(p_values: Sequence[float], correction: str = "holm") -> FloatArray:
    """Adjust a family of p-values by name: one of :data:`CORRECTIONS`."""
    if correction == "holm":
        return holm(p_values)
    if correction == "bonferroni":
        return bonferroni(p_values)
    if correction in ("benjamini-hochberg", "bh"):
        return benjamini_hochberg(p_values)
    if correction == "none":
        return _split(p_values)[0].copy()
    raise ValueError(f"correction must be one of {list(CORRECTIONS)}; got {correction!r}")

"""Mergeable sufficient statistics: the contract between data (arrays or SQL) and the tests.

A :class:`Moments` holds, for ``k`` numeric columns observed on ``n`` units, the count, the
column means and the matrix of *centred* cross products ``sum((x_i - mean)(x_i - mean)^T)``.
Centred moments stay accurate when the data carry a large offset (a timestamp, a price in
cents), which raw sums of squares do not. Two ``Moments`` of disjoint sets of units merge
exactly with Chan et al.'s parallel update, so per-partition aggregates (SQL ``GROUP BY``,
shards, days) combine into the same numbers as a pass over the concatenated data.

SQL computes raw or shifted sums; :meth:`Moments.from_sums` turns them into centred moments.
Every test in :mod:`splitlab.core.stats` needs nothing more than these statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

__all__ = ["FloatArray", "Moments", "merge_all"]


def _frozen(array: FloatArray) -> FloatArray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Moments:
    """Count, means and centred cross products of ``k`` columns over ``n`` units.

    ``mean`` has shape ``(k,)`` and ``comoment`` shape ``(k, k)``; both are read-only arrays.
    An empty ``Moments`` (``n == 0``) has zero means and comoments.
    """

    n: int
    mean: FloatArray
    comoment: FloatArray

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        mean = np.array(self.mean, dtype=np.float64).reshape(-1)
        comoment = np.array(self.comoment, dtype=np.float64)
        k = mean.shape[0]
        if comoment.shape != (k, k):
            raise ValueError(
                f"comoment must have shape ({k}, {k}) to match mean, got {comoment.shape}"
            )
        object.__setattr__(self, "mean", _frozen(mean))
        object.__setattr__(self, "comoment", _frozen(comoment))

    # --- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, k: int) -> Moments:
        """The statistics of no units over ``k`` columns (the identity of :meth:`merge`)."""
        if k < 1:
            raise ValueError(f"k must be >= 1 column, got {k}")
        return cls(0, np.zeros(k), np.zeros((k, k)))

    @classmethod
    def from_arrays(cls, *columns: ArrayLike) -> Moments:
        """Statistics of equally long 1-d columns (or one 2-d array of shape ``(n, k)``)."""
        if not columns:
            raise ValueError("columns: pass at least one array")
        if len(columns) == 1 and np.ndim(columns[0]) == 2:
            data = np.asarray(columns[0], dtype=np.float64)
        else:
            arrays = [np.asarray(c, dtype=np.float64).reshape(-1) for c in columns]
            lengths = {a.shape[0] for a in arrays}
            if len(lengths) != 1:
                raise ValueError(f"columns must have equal lengths, got {sorted(lengths)}")
            data = np.column_stack(arrays)
        n, k = data.shape
        if n == 0:
            return cls.empty(k)
        if not np.all(np.isfinite(data)):
            raise ValueError("columns contain NaN or infinite values; drop or impute them first")
        mean = data.mean(axis=0)
        centred = data - mean
        # Second pass: remove the rounding error of the first mean (two-pass algorithm).
        correction = centred.mean(axis=0)
        mean = mean + correction
        centred -= correction
        return cls(n, mean, centred.T @ centred)

    @classmethod
    def from_sums(
        cls,
        n: int,
        sums: ArrayLike,
        sum_products: ArrayLike,
        shift: ArrayLike | None = None,
    ) -> Moments:
        """Statistics from SQL-style aggregates.

        ``sums[j] = sum(x_j - shift_j)`` and ``sum_products[j, l] = sum((x_j - shift_j)(x_l -
        shift_l))``. ``shift`` defaults to zero (raw sums); choosing a shift near the mean
        (any constant, e.g. last week's mean) keeps the aggregates accurate for large offsets.
        """
        s = np.asarray(sums, dtype=np.float64).reshape(-1)
        k = s.shape[0]
        sp = np.asarray(sum_products, dtype=np.float64).reshape(k, k)
        c = np.zeros(k) if shift is None else np.asarray(shift, dtype=np.float64).reshape(k)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return cls.empty(k)
        centred_mean = s / n
        comoment = sp - np.outer(s, s) / n
        comoment = (comoment + comoment.T) / 2.0
        return cls(int(n), c + centred_mean, comoment)

    # --- algebra ------------------------------------------------------------------------
    @property
    def k(self) -> int:
        """The number of columns."""
        return int(self.mean.shape[0])

    def merge(self, other: Moments) -> Moments:
        """Statistics of the union of two disjoint sets of units (Chan et al., 1979)."""
        if other.k != self.k:
            raise ValueError(f"other has {other.k} columns, expected {self.k}")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, comoment)

    def __add__(self, other: Moments) -> Moments:
        return self.merge(other)

    def select(self, columns: Sequence[int]) -> Moments:
        """The statistics of a subset (or reordering) of the columns."""
        idx = np.asarray(columns, dtype=np.intp)
        if idx.size == 0 or idx.min() < -self.k or idx.max() >= self.k:
            raise ValueError(f"columns must index 0..{self.k - 1}, got {list(columns)}")
        return Moments(self.n, self.mean[idx], self.comoment[np.ix_(idx, idx)])

    # --- derived quantities ---------------------------------------------------------------
    @property
    def covariance(self) -> FloatArray:
        """Sample covariance matrix (``ddof=1``); NaN when ``n < 2``."""
        if self.n < 2:
            return np.full((self.k, self.k), np.nan)
        return self.comoment / (self.n - 1)

    @property
    def variance(self) -> FloatArray:
        """Sample variances of the columns (``ddof=1``); NaN when ``n < 2``."""
        return np.diag(self.covariance).copy()

    @property
    def sums(self) -> FloatArray:
        """Raw sums of the columns (what ``SUM(x)`` returns)."""
        return self.mean * self.n

    @property
    def sum_products(self) -> FloatArray:
        """Raw sums of cross products (what ``SUM(x * y)`` returns)."""
        return self.comoment + np.outer(self.mean, self.mean) * self.n

    def allclose(self, other: Moments, rtol: float = 1e-9, atol: float = 1e-9) -> bool:
        """Whether two statistics agree up to floating-point tolerance."""
        return (
            self.n == other.n
            and self.k == other.k
            and bool(np.allclose(self.mean, other.mean, rtol=rtol, atol=atol))
            and bool(np.allclose(self.comoment, other.comoment, rtol=rtol, atol=atol))
        )

    def __repr__(self) -> str:
        return f"Moments(n={self.n}, mean={self.mean.tolist()}, comoment={self.comoment.tolist()})"


def merge_all(parts: Iterable[Moments], k: int | None = None) -> Moments:
    """Merge any number of statistics; ``k`` is required when ``parts`` may be empty."""
    items = list(parts)
    if not items:
        if k is None:
            raise ValueError("parts is empty: pass k to get the empty statistics")
        return Moments.empty(k)
    return reduce(Moments.merge, items)

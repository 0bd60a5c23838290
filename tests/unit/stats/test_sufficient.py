"""Laws of mergeable sufficient statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from splitlab.core.stats.sufficient import Moments, merge_all

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def blocks(min_rows: int = 0) -> st.SearchStrategy[np.ndarray]:
    return st.integers(min_rows, 12).flatmap(lambda n: arrays(np.float64, (n, 3), elements=finite))


def _close(a: Moments, b: Moments) -> bool:
    scale = max(1.0, float(np.abs(a.comoment).max(initial=0.0)))
    return (
        a.n == b.n
        and np.allclose(a.mean, b.mean, atol=1e-9, rtol=1e-9)
        and np.allclose(a.comoment, b.comoment, atol=1e-9 * scale, rtol=1e-9)
    )


@given(blocks(), blocks())
def test_merge_equals_statistics_of_concatenation(a: np.ndarray, b: np.ndarray) -> None:
    merged = Moments.from_arrays(a) if a.size else Moments.empty(3)
    other = Moments.from_arrays(b) if b.size else Moments.empty(3)
    whole = np.vstack([a, b])
    expected = Moments.from_arrays(whole) if whole.size else Moments.empty(3)
    assert _close(merged.merge(other), expected)


@given(blocks(), blocks())
def test_merge_is_commutative(a: np.ndarray, b: np.ndarray) -> None:
    ma, mb = Moments.from_arrays(a), Moments.from_arrays(b)
    assert _close(ma + mb, mb + ma)


@given(blocks(), blocks(), blocks())
def test_merge_is_associative(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    ma, mb, mc = Moments.from_arrays(a), Moments.from_arrays(b), Moments.from_arrays(c)
    assert _close((ma + mb) + mc, ma + (mb + mc))


@given(blocks())
def test_empty_is_identity(a: np.ndarray) -> None:
    m = Moments.from_arrays(a)
    assert _close(m + Moments.empty(3), m)
    assert _close(Moments.empty(3) + m, m)


@settings(max_examples=50)
@given(st.lists(blocks(min_rows=2), min_size=2, max_size=5), st.integers(0, 2**32 - 1))
def test_stable_under_large_offset(parts: list[np.ndarray], seed: int) -> None:
    """Adding 1e9 to every value moves the means and leaves the comoments (nearly) alone."""
    rng = np.random.default_rng(seed)
    parts = [p / 1e3 + rng.normal(size=p.shape) for p in parts]  # unit-scale, nonconstant
    plain = merge_all(Moments.from_arrays(p) for p in parts)
    shifted = merge_all(Moments.from_arrays(p + 1e9) for p in parts)
    assert shifted.n == plain.n
    np.testing.assert_allclose(shifted.mean - 1e9, plain.mean, atol=1e-6)
    # Each value at 1e9 carries a rounding error of ~1e9 * 2.2e-16 = 2.2e-7, so each row's
    # centred product is off by about that much (unit-scale deviations): allow it per row.
    # Raw sums would be off by whole units (next test).
    np.testing.assert_allclose(shifted.comoment, plain.comoment, rtol=1e-6, atol=1e-6 * shifted.n)


def test_offset_is_where_raw_sums_fail_and_shifted_sums_do_not() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=10_000) + 1e9
    exact = Moments.from_arrays(x)
    assert abs(exact.variance[0] - 1.0) < 0.05
    # A shift near the data (what the analyzer's SQL does) recovers the variance exactly.
    shift = 1e9
    shifted = Moments.from_sums(x.size, [np.sum(x - shift)], [[np.sum((x - shift) ** 2)]], [shift])
    assert shifted.allclose(exact, rtol=1e-9, atol=1e-6)


def test_from_sums_round_trips_raw_sums() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(5.0, 2.0, size=(500, 3))
    m = Moments.from_arrays(data)
    again = Moments.from_sums(m.n, data.sum(axis=0), data.T @ data)
    assert again.allclose(m, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(m.sums, data.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.sum_products, data.T @ data, rtol=1e-12)
    np.testing.assert_allclose(m.covariance, np.cov(data.T), rtol=1e-12)


def test_select_and_derived_quantities() -> None:
    m = Moments.from_arrays([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])
    sub = m.select([1])
    assert sub.k == 1
    assert sub.mean[0] == pytest.approx(13 / 3)
    assert m.variance[0] == pytest.approx(1.0)
    assert np.isnan(Moments.from_arrays([1.0]).variance[0])


def test_arrays_are_read_only() -> None:
    m = Moments.from_arrays([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        m.mean[0] = 3.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: Moments.from_arrays([1.0, 2.0], [1.0]), "equal lengths"),
        (lambda: Moments.from_arrays([1.0, np.nan]), "NaN"),
        (lambda: Moments.from_arrays(), "at least one"),
        (lambda: Moments(1, np.zeros(2), np.zeros((3, 3))), "comoment"),
        (lambda: Moments.empty(0), "k must"),
        (lambda: merge_all([]), "pass k"),
        (lambda: Moments.from_arrays([1.0]).merge(Moments.empty(2)), "columns"),
        (lambda: Moments.from_arrays([1.0]).select([3]), "columns must index"),
    ],
)
def test_bad_arguments_name_the_problem(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]

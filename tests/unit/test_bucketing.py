"""splitlab.core.assignment.bucketing against the GrowthBook JavaScript SDK's outputs, plus the laws
it keeps."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitlab.core.assignment.bucketing import (
    bucket_hash,
    bucket_ranges,
    choose_variation,
    fnv1a32,
    in_namespace,
)

VECTORS_PATH = Path(__file__).parent / "data" / "growthbook_vectors.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return data


# Any Python string, lone surrogates included (a JavaScript string may hold them too).
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)


def _ranges(raw: list[list[float]]) -> list[tuple[float, float]]:
    return [(a, b) for a, b in raw]


# --- cross-SDK vectors --------------------------------------------------------------------------


def test_vectors_record_the_sdk_and_cover_hard_strings(vectors: dict[str, Any]) -> None:
    assert vectors["sdk"]["package"] == "@growthbook/growthbook"
    assert vectors["sdk"]["version"]
    values = {row[1] for row in vectors["hash"]}
    # The cases that separate UTF-16 hashing from UTF-8 or code-point hashing must stay covered.
    assert any(any(ord(c) > 0xFFFF for c in v) for v in values), "astral-plane ids"
    assert any(any(0x4E00 <= ord(c) <= 0x9FFF for c in v) for v in values), "CJK ids"
    assert "e\u0301" in values, "combining characters"
    assert "\ud83d" in values, "a lone surrogate"
    assert any(v != v.encode("ascii", "ignore").decode() for v in values), "non-ASCII ids"
    assert {row[2] for row in vectors["hash"]} >= {1, 2}
    assert len(vectors["hash"]) >= 1000


def test_bucket_hash_matches_every_vector(vectors: dict[str, Any]) -> None:
    mismatches = [
        (seed, value, version, expected, bucket_hash(seed, value, version))
        for seed, value, version, expected in vectors["hash"]
        if bucket_hash(seed, value, version) != expected
    ]
    assert mismatches == []


def test_bucket_ranges_match_every_vector(vectors: dict[str, Any]) -> None:
    mismatches = []
    for num, coverage, weights, expected in vectors["bucket_ranges"]:
        got = bucket_ranges(num) if coverage is None else bucket_ranges(num, coverage, weights)
        if got != _ranges(expected):
            mismatches.append((num, coverage, weights, expected, got))
    assert mismatches == []


def test_choose_variation_matches_every_vector(vectors: dict[str, Any]) -> None:
    mismatches = [
        (n, ranges, expected)
        for n, ranges, expected in vectors["choose_variation"]
        if choose_variation(n, _ranges(ranges)) != expected
    ]
    assert mismatches == []


def test_in_namespace_matches_every_vector(vectors: dict[str, Any]) -> None:
    mismatches = [
        (unit, namespace, expected)
        for unit, namespace, expected in vectors["in_namespace"]
        if in_namespace(unit, (namespace[0], namespace[1], namespace[2])) != expected
    ]
    assert mismatches == []
    assert {expected for _, _, expected in vectors["in_namespace"]} == {True, False}


# --- golden literals (read straight from the SDK's output, kept here for a quick glance) --------


@pytest.mark.parametrize(
    ("seed", "value", "version", "expected"),
    [
        ("", "a", 1, 0.22),
        ("", "a", 2, 0.0216),
        ("", "123", 2, 0.4547),
        ("", "😀", 1, 0.472),
        ("", "😀", 2, 0.4971),
        ("", "e\u0301", 2, 0.515),
        ("", "\u00e9", 2, 0.8917),
        ("", "\ud83d", 2, 0.1547),
    ],
)
def test_bucket_hash_golden(seed: str, value: str, version: int, expected: float) -> None:
    assert bucket_hash(seed, value, version) == expected


def test_astral_characters_hash_as_two_utf16_code_units() -> None:
    def reference(units: list[int]) -> int:
        h = 0x811C9DC5
        for unit in units:
            h = ((h ^ unit) * 0x01000193) % 2**32
        return h

    assert fnv1a32("😀") == reference([0xD83D, 0xDE00])
    assert fnv1a32("a😀b") == reference([0x61, 0xD83D, 0xDE00, 0x62])
    # Hashing code points or UTF-8 bytes would give other values.
    assert fnv1a32("😀") != reference([ord("😀")])
    assert fnv1a32("😀") != reference(list("😀".encode()))
    # Composed and decomposed forms are different strings, hence different buckets.
    assert fnv1a32("\u00e9") != fnv1a32("e\u0301")


@pytest.mark.parametrize("version", [0, 3, -1, 99])
def test_unknown_hash_version_gives_none(version: int) -> None:
    assert bucket_hash("seed", "unit", version) is None


def test_bucket_ranges_growthbook_leniency() -> None:
    assert bucket_ranges(2, -0.2) == [(0, 0), (0.5, 0.5)]
    assert bucket_ranges(2, 1.5) == [(0, 0.5), (0.5, 1)]
    assert bucket_ranges(2, 1, [0.2, 0.3]) == [(0, 0.5), (0.5, 1)]  # sums to 0.5
    assert bucket_ranges(3, 1, [0.5, 0.5]) == bucket_ranges(3)  # wrong length
    assert bucket_ranges(0) == []


def test_bucket_ranges_rejects_nan_and_non_int_counts() -> None:
    with pytest.raises(ValueError, match="coverage"):
        bucket_ranges(2, math.nan)
    with pytest.raises(ValueError, match="weights"):
        bucket_ranges(2, 1.0, [math.nan, 0.5])
    with pytest.raises(ValueError, match="num_variations"):
        bucket_ranges(2.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_variations"):
        bucket_ranges(True, 1.0)


# --- laws ---------------------------------------------------------------------------------------


@given(seed=any_text, value=any_text, version=st.sampled_from([1, 2]))
def test_bucket_hash_is_in_unit_interval(seed: str, value: str, version: int) -> None:
    n = bucket_hash(seed, value, version)
    assert n is not None
    assert 0 <= n < 1


@given(prefix=any_text, suffix=any_text)
def test_fnv_continues_from_a_prefix_state(prefix: str, suffix: str) -> None:
    assert fnv1a32(prefix + suffix) == fnv1a32(suffix, fnv1a32(prefix))


@st.composite
def weights(draw: st.DrawFn) -> list[float]:
    raw = draw(st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=8))
    if sum(raw) == 0:
        raw[0] = 1
    total = sum(raw)
    return [r / total for r in raw]


coverages = st.floats(min_value=0, max_value=1, allow_nan=False)
positions = st.floats(min_value=0, max_value=1, allow_nan=False, exclude_max=True)


@given(ws=weights(), coverage=coverages)
def test_bucket_ranges_cover_coverage_in_total_without_overlap(
    ws: list[float], coverage: float
) -> None:
    ranges = bucket_ranges(len(ws), coverage, ws)
    assert len(ranges) == len(ws)
    for (start, end), w in zip(ranges, ws, strict=True):
        assert 0 <= start <= end <= 1 + 1e-12
        assert end - start == pytest.approx(coverage * w, abs=1e-12)
    for (_, end), (next_start, _) in itertools.pairwise(ranges):
        assert end <= next_start + 1e-12  # no overlap
    assert sum(end - start for start, end in ranges) == pytest.approx(coverage, abs=1e-9)


@given(ws=weights(), low=coverages, high=coverages, n=positions)
def test_lowering_coverage_never_moves_a_unit_to_another_variant(
    ws: list[float], low: float, high: float, n: float
) -> None:
    low, high = min(low, high), max(low, high)
    before = choose_variation(n, bucket_ranges(len(ws), high, ws))
    after = choose_variation(n, bucket_ranges(len(ws), low, ws))
    assert after in (-1, before)


@given(ws=weights(), coverage=coverages, n=positions)
def test_full_coverage_places_every_position(ws: list[float], coverage: float, n: float) -> None:
    index = choose_variation(n, bucket_ranges(len(ws), 1.0, ws))
    # With full coverage and weights summing to 1, only float rounding at 1 can leave a gap.
    assert index >= 0 or n >= sum(ws) - 1e-12


@given(
    ranges=st.lists(st.tuples(positions, positions).map(sorted).map(tuple), max_size=6),
    n=positions,
)
def test_choose_variation_returns_the_first_range_holding_n(
    ranges: list[tuple[float, float]], n: float
) -> None:
    index = choose_variation(n, ranges)
    holding = [i for i, (start, end) in enumerate(ranges) if start <= n < end]
    assert index == (holding[0] if holding else -1)


@given(unit=any_text, start=positions, width=positions)
def test_in_namespace_is_the_v1_hash_in_the_slice(unit: str, start: float, width: float) -> None:
    end = min(1.0, start + width)
    n = bucket_hash("__ns", unit, 1)
    assert n is not None
    assert in_namespace(unit, ("ns", start, end)) == (start <= n < end)

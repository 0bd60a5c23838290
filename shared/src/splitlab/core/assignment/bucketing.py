"""Deterministic bucketing, bit-compatible with the GrowthBook SDKs.

Pure functions over plain data: no I/O, no clock, no randomness. The hash is 32-bit FNV-1a over
the string's UTF-16 code units, exactly as the GrowthBook JavaScript SDK computes it (JavaScript
strings are UTF-16, so a character outside the Basic Multilingual Plane, such as most emoji,
contributes two code units, its surrogate pair). A unit hashed here lands in the same bucket as in
any GrowthBook SDK, so teams migrating from GrowthBook keep every unit where it was.

Compatibility is pinned by ``tests/unit/data/growthbook_vectors.json``, computed with the
JavaScript SDK itself; see ``docs/assignment.md``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence

__all__ = [
    "FNV_OFFSET_BASIS",
    "HASH_VERSIONS",
    "bucket_hash",
    "bucket_ranges",
    "choose_variation",
    "fnv1a32",
    "in_namespace",
]

FNV_OFFSET_BASIS = 0x811C9DC5
"""The 32-bit FNV offset basis: the hash state before any code unit is consumed."""
HASH_VERSIONS = (1, 2)
"""Hash versions GrowthBook defines: 1 (original, slightly biased) and 2 (unbiased)."""

# UTF-16 in the machine's byte order, so that memoryview.cast("H") reads code units directly.
_UTF16 = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def _code_units(value: str) -> Iterable[int]:
    """The UTF-16 code units of ``value``, as JavaScript's ``charCodeAt`` sees them.

    ASCII strings (the common case: UUIDs, numeric ids) take a fast path where each byte is its
    own code unit. Lone surrogates, which a JavaScript string may hold, pass through unchanged.
    """
    if value.isascii():
        return value.encode("ascii")
    return memoryview(value.encode(_UTF16, "surrogatepass")).cast("H")


def fnv1a32(value: str, state: int = FNV_OFFSET_BASIS) -> int:
    """32-bit FNV-1a of ``value``'s UTF-16 code units, continuing from ``state``.

    ``fnv1a32(a + b) == fnv1a32(b, fnv1a32(a))``, which lets a caller hash a fixed prefix (an
    experiment's seed) once and reuse the state for every unit.
    """
    h = state
    for unit in _code_units(value):
        # Literal constants (the FNV prime, the 32-bit mask): the hot loop of every decision.
        h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
    return h


def bucket_hash(seed: str, value: str, version: int = 2) -> float | None:
    """The unit's position in [0, 1) for an experiment seeded with ``seed``.

    Version 1: ``fnv(value + seed) % 1000 / 1000``; version 2:
    ``fnv(str(fnv(seed + value))) % 10000 / 10000``. Any other version gives None, as in
    GrowthBook (the caller treats the unit as not in the experiment).
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(value, fnv1a32(seed)))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def _equal_weights(num_variations: int) -> list[float]:
    if num_variations <= 0:
        return []
    return [1 / num_variations] * num_variations


def bucket_ranges(
    num_variations: int,
    coverage: float = 1.0,
    weights: Sequence[float] | None = None,
) -> list[tuple[float, float]]:
    """Each variant's range ``[start, end)``: width ``coverage * weight`` at its cumulative weight.

    Follows GrowthBook's ``getBucketRanges`` to the bit, including its leniency: coverage outside
    [0, 1] is clamped; weights of the wrong length, or summing outside [0.99, 1.01], fall back to
    equal weights; ``num_variations <= 0`` gives no ranges. Because a range starts at its
    variant's cumulative weight whatever the coverage, lowering coverage only shrinks ranges (a
    unit can drop out, never move to another variant), and raising it never moves an included unit.

    NaN cannot occur in GrowthBook's JSON payloads, so it is rejected here rather than copied.
    """
    if isinstance(num_variations, bool) or not isinstance(num_variations, int):
        raise ValueError(
            f"num_variations must be an int, got {num_variations!r}; pass len(variants)"
        )
    if math.isnan(coverage):
        raise ValueError("coverage must be a number in [0, 1], got NaN")
    coverage = min(max(coverage, 0.0), 1.0)

    equal = _equal_weights(num_variations)
    chosen: Sequence[float] = equal if weights is None else weights
    if len(chosen) != num_variations:
        chosen = equal
    if any(math.isnan(w) for w in chosen):
        raise ValueError(f"weights must be numbers, got {list(chosen)!r}; drop the NaN weight")
    # Summed left to right like the SDK's reduce (not math.fsum), so the tolerance check agrees.
    total = 0.0
    for w in chosen:
        total = w + total
    if total < 0.99 or total > 1.01:
        chosen = equal

    ranges: list[tuple[float, float]] = []
    cumulative = 0.0
    for w in chosen:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the first range holding ``n`` (``start <= n < end``), or -1 if none does."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(unit_id: str, namespace: tuple[str, float, float]) -> bool:
    """Whether ``unit_id`` falls in the namespace slice ``(namespace_id, start, end)``.

    The position is ``bucket_hash("__" + namespace_id, unit_id, 1)``, tested against
    ``[start, end)``; experiments sharing a namespace id with disjoint slices never share a unit.
    """
    namespace_id, start, end = namespace
    n = (fnv1a32(unit_id + "__" + namespace_id) % 1000) / 1000
    return start <= n < end

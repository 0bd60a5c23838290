"""Sample ratio mismatch: a chi-square test of observed counts against the configured split.

The expected counts come from the experiment's configured weights (not an equal split). Below
``min_count`` units in total, or with an expected count under 5 in any arm, the chi-square
approximation is unreliable and the check reports ``insufficient_data`` instead of a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from scipy import stats as sps

__all__ = ["SRMResult", "srm_test"]

DEFAULT_THRESHOLD = 0.001
DEFAULT_MIN_COUNT = 100


@dataclass(frozen=True)
class SRMResult:
    p_value: float
    statistic: float
    observed: dict[str, int]
    expected_weights: dict[str, float]
    threshold: float
    status: str
    """``ok``, ``mismatch`` or ``insufficient_data``."""
    expected: dict[str, float] = field(default_factory=dict)

    @property
    def mismatch(self) -> bool:
        return self.status == "mismatch"


def srm_test(
    observed: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    min_count: int = DEFAULT_MIN_COUNT,
) -> SRMResult:
    """Chi-square goodness of fit of ``observed`` counts to ``weights`` (default: equal)."""
    if len(observed) < 2:
        raise ValueError(f"observed must hold counts for at least 2 variants; got {len(observed)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), e.g. 0.001; got {threshold}")
    if min_count < 0:
        raise ValueError(f"min_count must be >= 0; got {min_count}")
    counts = {str(k): int(v) for k, v in observed.items()}
    if any(v < 0 for v in counts.values()):
        raise ValueError("observed counts must be >= 0")
    if weights is None:
        raw = dict.fromkeys(counts, 1.0)
    else:
        raw = {str(k): float(v) for k, v in weights.items()}
        if set(raw) != set(counts):
            raise ValueError(
                f"weights must name exactly the observed variants {sorted(counts)}; "
                f"got {sorted(raw)}"
            )
        if any(not (v > 0) for v in raw.values()):
            raise ValueError("weights must all be > 0")
    total_weight = sum(raw.values())
    normalized = {k: raw[k] / total_weight for k in counts}
    total = sum(counts.values())
    expected = {k: total * normalized[k] for k in counts}
    if total == 0:
        return SRMResult(math.nan, math.nan, counts, normalized, threshold, "insufficient_data")
    statistic = sum((counts[k] - expected[k]) ** 2 / expected[k] for k in counts)
    p_value = float(sps.chi2.sf(statistic, len(counts) - 1))
    if total < min_count or min(expected.values()) < 5:
        status = "insufficient_data"
    else:
        status = "mismatch" if p_value < threshold else "ok"
    return SRMResult(p_value, float(statistic), counts, normalized, threshold, status, expected)

"""A ship / roll back / keep running / inconclusive recommendation for one treatment.

Rules, in order (the first that applies wins):

1. SRM mismatch -> ``inconclusive``: the split is broken, no effect can be trusted.
2. A guardrail whose harm is established beyond its non-inferiority margin (the whole CI is
   on the harmful side of the margin) -> ``roll_back``; so is a primary metric that is
   significantly worse.
3. Below the minimum sample -> ``keep_running``.
4. Primary significantly better and every guardrail shown non-inferior (its CI excludes harm
   larger than the margin) -> ``ship``.
5. Primary significantly better but a guardrail not yet shown non-inferior -> ``keep_running``.
6. Otherwise -> ``inconclusive`` (the planned sample is reached without a clear result).

Margins are on the relative effect (``0.02`` = at most 2% worse) and respect the metric's
direction (``lower_is_better`` for latency, errors, cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from splitlab.core.stats.comparison import Comparison

__all__ = ["ACTIONS", "Decision", "GuardrailCheck", "decide"]

Action = Literal["ship", "roll_back", "keep_running", "inconclusive"]
ACTIONS: tuple[str, ...] = ("ship", "roll_back", "keep_running", "inconclusive")


@dataclass(frozen=True)
class GuardrailCheck:
    metric: str
    comparison: Comparison
    margin: float
    """Largest acceptable relative harm, >= 0."""
    lower_is_better: bool = False

    def __post_init__(self) -> None:
        if not (self.margin >= 0 and math.isfinite(self.margin)):
            raise ValueError(f"margin for {self.metric!r} must be a finite number >= 0")

    def _harm_interval(self) -> tuple[float, float]:
        """The CI of the relative harm (positive = worse)."""
        c = self.comparison
        if self.lower_is_better:
            return c.rel_ci_lower, c.rel_ci_upper
        return -c.rel_ci_upper, -c.rel_ci_lower

    @property
    def violated(self) -> bool:
        low, _ = self._harm_interval()
        return math.isfinite(low) and low > self.margin

    @property
    def non_inferior(self) -> bool:
        _, high = self._harm_interval()
        return math.isfinite(high) and high < self.margin


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str] = field(default_factory=list)


def _significant(c: Comparison, lower_is_better: bool) -> int:
    """+1 significantly better, -1 significantly worse, 0 neither."""
    if c.status != "ok" or not math.isfinite(c.p_value) or c.p_value >= c.alpha:
        return 0
    sign = 1 if c.effect > 0 else -1 if c.effect < 0 else 0
    return -sign if lower_is_better else sign


def decide(
    primary: Comparison,
    guardrails: Sequence[GuardrailCheck] = (),
    srm_mismatch: bool = False,
    min_sample: int | None = None,
    primary_lower_is_better: bool = False,
) -> Decision:
    """Apply the rules in this module's docstring."""
    if min_sample is not None and min_sample < 0:
        raise ValueError(f"min_sample must be >= 0 units per arm; got {min_sample}")
    if srm_mismatch:
        return Decision("inconclusive", ["sample ratio mismatch: fix assignment before reading"])
    violated = [g.metric for g in guardrails if g.violated]
    direction = _significant(primary, primary_lower_is_better)
    if violated:
        return Decision("roll_back", [f"guardrail harmed beyond its margin: {', '.join(violated)}"])
    if direction < 0:
        return Decision("roll_back", ["primary metric significantly worse"])
    smallest = min(primary.n_control, primary.n_treatment)
    if min_sample is not None and smallest < min_sample:
        return Decision(
            "keep_running", [f"minimum sample not reached: {smallest} < {min_sample} per arm"]
        )
    if direction > 0:
        pending = [g.metric for g in guardrails if not g.non_inferior]
        if not guardrails:
            return Decision("ship", ["primary metric significantly better; no guardrails set"])
        if not pending:
            return Decision("ship", ["primary metric significantly better; guardrails hold"])
        return Decision(
            "keep_running",
            [f"primary better but guardrails not yet non-inferior: {', '.join(pending)}"],
        )
    if primary.status != "ok":
        return Decision("inconclusive", [f"primary metric not estimable: {primary.status}"])
    return Decision("inconclusive", ["no significant effect on the primary metric"])

"""Ship / roll back / keep running / inconclusive."""

from __future__ import annotations

import pytest

from splitlab.core.stats.comparison import ArmEstimate, Comparison, compare
from splitlab.core.stats.decision import GuardrailCheck, decide


def comp(rel: float, se: float = 0.01, n: int = 10_000) -> Comparison:
    return compare(
        ArmEstimate(n, 1.0, se**2 / 2, n - 1, 1.0, se**2 / 2),
        ArmEstimate(n, 1.0 + rel, se**2 / 2, n - 1, 1.0 + rel, se**2 / 2),
    )


def test_ship_when_primary_wins_and_guardrails_hold() -> None:
    d = decide(
        comp(0.05), [GuardrailCheck("latency", comp(0.0, se=0.005), 0.02, lower_is_better=True)]
    )
    assert d.action == "ship"


def test_roll_back_on_guardrail_harm_beyond_margin() -> None:
    harm = GuardrailCheck("latency", comp(0.10, se=0.01), 0.02, lower_is_better=True)
    assert harm.violated
    assert decide(comp(0.05), [harm]).action == "roll_back"


def test_roll_back_when_primary_is_worse() -> None:
    assert decide(comp(-0.05)).action == "roll_back"
    assert decide(comp(0.05), primary_lower_is_better=True).action == "roll_back"


def test_keep_running_below_min_sample_or_unproven_guardrail() -> None:
    assert decide(comp(0.0), min_sample=20_000).action == "keep_running"
    unclear = GuardrailCheck("errors", comp(0.01, se=0.05), 0.02, lower_is_better=True)
    assert decide(comp(0.05), [unclear]).action == "keep_running"


def test_srm_and_no_effect_are_inconclusive() -> None:
    assert decide(comp(0.05), srm_mismatch=True).action == "inconclusive"
    assert decide(comp(0.0)).action == "inconclusive"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="margin"):
        GuardrailCheck("x", comp(0.0), -0.1)
    with pytest.raises(ValueError, match="min_sample"):
        decide(comp(0.0), min_sample=-1)

"""Power at the planned end: the plan's sample at the spread seen so far."""

from __future__ import annotations

import numpy as np
import pandas as pd

import splitlab
from splitlab.core.analysis.monitoring import power_at_planned, power_so_far


def result(sd: float, n: int = 2000) -> splitlab.AnalysisResult:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "variant": ["control"] * n + ["treatment"] * n,
            "revenue": np.concatenate([rng.normal(10, sd, n), rng.normal(10, sd, n)]),
        }
    )
    return splitlab.analyze(frame, variant_col="variant", control="control", metrics=["revenue"])


def test_the_planned_sample_has_more_power_than_half_of_it() -> None:
    r = result(sd=5.0)
    now = power_so_far(r, "revenue", 0.02, 0.05)["treatment"]
    planned = power_at_planned(r, "revenue", 0.02, 0.05, planned=16_000, total_units=4000)
    assert now is not None
    assert planned["treatment"] is not None
    assert planned["treatment"] > now


def test_a_spread_larger_than_planned_leaves_the_plan_underpowered() -> None:
    # 8,000 units per arm, a 2% lift of 10 (0.2) at sd 5: SE 0.079, power
    # Phi(0.2 / 0.079 - 1.96) = 0.72; at sd 10: SE 0.158, power Phi(1.26 - 1.96) = 0.24.
    calm = power_at_planned(result(5.0), "revenue", 0.02, 0.05, 16_000, 4000)["treatment"]
    noisy = power_at_planned(result(10.0), "revenue", 0.02, 0.05, 16_000, 4000)["treatment"]
    assert calm is not None
    assert noisy is not None
    assert 0.65 < calm < 0.8
    assert 0.15 < noisy < 0.33


def test_no_plan_gives_none() -> None:
    assert power_at_planned(result(5.0), "revenue", 0.02, 0.05, None, 4000) == {"treatment": None}

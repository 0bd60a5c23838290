"""Method candidates and the auto choice on sufficient statistics."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab.core.stats.adjustment import best_single_covariate, choose_method, estimate_candidates
from splitlab.core.stats.sufficient import Moments


def _arms(seed: int, strength: float) -> list[Moments]:
    rng = np.random.default_rng(seed)
    arms = []
    for _ in range(3):
        x = rng.normal(size=(2000, 2))
        y = strength * x[:, 1] + rng.normal(size=2000)
        arms.append(Moments.from_arrays(y, x[:, 0], x[:, 1]))
    return arms


def test_candidates_and_auto_pick_the_smallest_variance() -> None:
    arms = _arms(0, 2.0)
    cands = estimate_candidates(
        arms,
        ["control", "a", "b"],
        "mean",
        ["none", "cuped", "regression"],
        [1, 2],
        None,
        ["x0", "x1"],
    )
    assert set(cands) == {"none", "cuped", "regression"}
    assert cands["cuped"].detail == "covariate x1"
    assert cands["regression"].variance_reduction > 0.7
    method, reason = choose_method(cands)
    assert method in ("cuped", "regression")
    assert "smallest variance" in reason


def test_auto_falls_back_when_nothing_helps() -> None:
    arms = _arms(1, 0.0)
    cands = estimate_candidates(arms, ["control", "a", "b"], "mean", ["none", "regression"], [1, 2])
    assert cands["regression"].variance >= cands["none"].variance * 0.99
    if cands["regression"].variance >= cands["none"].variance:
        assert choose_method(cands)[0] == "none"
    only_none = {"none": cands["none"]}
    assert choose_method(only_none) == (
        "none",
        "no covariate method applies to this metric; unadjusted",
    )


def test_ratio_metrics_only_get_the_delta_method() -> None:
    rng = np.random.default_rng(2)
    arms = [
        Moments.from_arrays(rng.poisson(2, 500) * 1.0, rng.poisson(5, 500) + 1.0) for _ in range(2)
    ]
    cands = estimate_candidates(arms, ["control", "t"], "ratio", ["none", "cuped"], [1])
    assert list(cands) == ["none"]


def test_best_single_covariate() -> None:
    arms = _arms(3, 1.0)
    assert best_single_covariate(arms, [1, 2]) == 2
    with pytest.raises(ValueError, match="covariates"):
        best_single_covariate(arms, [])
    with pytest.raises(ValueError, match="none"):
        choose_method({})

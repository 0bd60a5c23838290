from __future__ import annotations

import numpy as np

from splitlab.synth.counterfactual import Inputs
from splitlab.synth.selection import holdout_size, select_method


def _donors(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 1, (40, 8)), axis=0) + rng.normal(0, 5, 8)


def test_picks_a_flexible_method_for_a_scaled_series_and_says_why() -> None:
    donors = _donors(0)
    y = 3.0 * donors[:, 0] + 40.0
    choice = select_method(Inputs(y_pre=y[:30], donors=donors, n_pre=30))
    assert choice.method in {"augmented", "forecast"}
    assert choice.holdout_rmspe[choice.method] < choice.holdout_rmspe["classic"]
    assert choice.reason.startswith(f"auto chose {choice.method}: lowest RMSPE on the last 7")
    assert "classic" in choice.reason


def test_prefers_classic_when_it_fits_as_well() -> None:
    donors = _donors(1)
    y = donors[:, :2] @ np.array([0.5, 0.5])
    choice = select_method(Inputs(y_pre=y[:30], donors=donors, n_pre=30))
    assert choice.method == "classic"


def test_short_pre_period_skips_methods_it_cannot_judge() -> None:
    donors = _donors(2)
    choice = select_method(Inputs(y_pre=donors[:5, 0], donors=donors, n_pre=5))
    assert set(choice.holdout_rmspe) == {"classic"}
    assert "forecast skipped" in choice.reason
    assert holdout_size(5) == 2

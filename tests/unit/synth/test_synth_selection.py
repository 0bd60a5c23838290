from __future__ import annotations

import numpy as np

from splitlab.core.synth.counterfactual import Inputs
from splitlab.core.synth.selection import (
    CLEAR_WIN,
    OVERFIT_RATIO,
    apply_rule,
    rolling_origins,
    select_method,
)

ORIGINS = (4, 5, 6, 7)  # n_pre = 8, horizon 2: the issue's panel


def _donors(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 1, (40, 8)), axis=0) + rng.normal(0, 5, 8)


def _rule(per_origin: dict[str, list[float]], in_sample: dict[str, float]) -> str:
    return apply_rule(per_origin, in_sample, ORIGINS, 2).method


def test_origins_cover_the_second_half_of_the_pre_period() -> None:
    assert rolling_origins(8, 8) == ((4, 5, 6, 7), 2)
    assert rolling_origins(30, 10) == ((22, 23, 24, 25, 26, 27, 28, 29), 7)  # the last 8
    assert rolling_origins(12, 1) == ((6, 7, 8, 9, 10, 11), 1)  # never beyond the post-period
    assert rolling_origins(3, 5) == ((), 1)


def test_the_issue_scores_no_longer_choose_the_overfit_forecast() -> None:
    # issue 21: forecast fit the pre-period to an RMSPE of 1 and held out 1,283
    per_origin = {
        "classic": [1600.0, 1700.0, 1500.0, 1650.0],
        "augmented": [1500.0, 1550.0, 1500.0, 1560.0],
        "forecast": [1200.0, 1300.0, 1250.0, 1380.0],
    }
    in_sample = {"classic": 860.0, "augmented": 280.0, "forecast": 1.0}
    choice = apply_rule(per_origin, in_sample, ORIGINS, 2)
    assert choice.method == "classic"
    assert "forecast" in choice.refused
    assert f"limit {OVERFIT_RATIO:g}x" in choice.refused["forecast"]
    # augmented is better than classic, but by 7%: not clearly
    assert "augmented is better than classic but not clearly and stably enough" in choice.reason


def test_a_flexible_method_needs_a_clear_win() -> None:
    in_sample = {"classic": 1.0, "augmented": 1.0, "forecast": 1.0}
    close = {"classic": [2.0] * 4, "augmented": [2.0] * 4, "forecast": [1.7] * 4}
    assert _rule(close, in_sample) == "classic"  # 85% of classic's error
    clear = {"classic": [2.0] * 4, "augmented": [2.0] * 4, "forecast": [2.0 * CLEAR_WIN] * 4}
    assert _rule(clear, in_sample) == "forecast"


def test_a_flexible_method_needs_a_stable_win() -> None:
    in_sample = {"classic": 1.0, "augmented": 1.0, "forecast": 1.0}
    # pooled error far lower, but only thanks to two origins out of four
    lucky = {"classic": [2.0, 2.0, 4.0, 4.0], "augmented": [9.0] * 4, "forecast": [2.1, 2.1, 1, 1]}
    choice = apply_rule(lucky, in_sample, ORIGINS, 2)
    assert choice.method == "classic"
    assert "at 2 of 4 origins" in choice.reason


def test_the_ladder_goes_through_augmented() -> None:
    in_sample = {"classic": 1.0, "augmented": 1.0, "forecast": 1.0}
    errors = {"classic": [4.0] * 4, "augmented": [2.0] * 4, "forecast": [1.9] * 4}
    choice = apply_rule(errors, in_sample, ORIGINS, 2)
    assert choice.method == "augmented"  # forecast is not clearly better than augmented
    errors["forecast"] = [1.0] * 4
    assert _rule(errors, in_sample) == "forecast"


def test_with_fewer_than_three_origins_classic_is_kept() -> None:
    in_sample = {"classic": 1.0, "augmented": 1.0, "forecast": 1.0}
    errors = {"classic": [4.0] * 2, "augmented": [1.0] * 2, "forecast": [1.0] * 2}
    assert apply_rule(errors, in_sample, (3, 4), 1).method == "classic"


def test_picks_a_flexible_method_for_a_scaled_series_and_says_why() -> None:
    donors = _donors(0)
    y = 3.0 * donors[:, 0] + 40.0
    choice = select_method(Inputs(y_pre=y[:30], donors=donors, n_pre=30))
    assert choice.method in {"augmented", "forecast"}
    assert choice.scores[choice.method] < CLEAR_WIN * choice.scores["classic"]
    assert choice.reason.startswith(
        f"auto chose {choice.method}: held-out RMSPE over 8 rolling origins, 7 period(s) ahead"
    )
    assert "clearly" in choice.reason


def test_prefers_classic_when_it_fits_as_well() -> None:
    donors = _donors(1)
    y = donors[:, :2] @ np.array([0.5, 0.5])
    choice = select_method(Inputs(y_pre=y[:30], donors=donors, n_pre=30))
    assert choice.method == "classic"


def test_short_pre_period_keeps_classic_and_says_why() -> None:
    donors = _donors(2)
    choice = select_method(Inputs(y_pre=donors[:3, 0], donors=donors, n_pre=3))
    assert choice.method == "classic"
    assert "no method can be judged" in choice.reason
    five = select_method(Inputs(y_pre=donors[:5, 0] * 2, donors=donors, n_pre=5))
    assert five.method == "classic"
    assert five.origins == (3, 4)

from __future__ import annotations

import numpy as np

from splitlab.core.synth.diagnostics import (
    EXTREME_WEIGHT,
    EXTREME_WEIGHT_SUM,
    fit_warnings,
    in_time_warning,
    near_exact_warning,
    stationarity_warnings,
    weight_warnings,
)


def test_good_fit_has_no_warning() -> None:
    rng = np.random.default_rng(0)
    donors = rng.normal(0, 1, (20, 5)).cumsum(axis=0)
    y = donors.mean(axis=1)
    assert fit_warnings(y, y + rng.normal(0, 0.01, 20), donors) == []


def test_poor_fit_and_outside_the_hull_are_flagged() -> None:
    rng = np.random.default_rng(1)
    donors = rng.normal(0, 1, (20, 5))
    y = donors.max(axis=1) + 5 + rng.normal(0, 1, 20)
    notes = fit_warnings(y, donors.mean(axis=1), donors)
    assert any(n.startswith("poor pre-period fit") for n in notes)
    assert any("above every donor in 100% of pre-periods" in n for n in notes)


def test_drifting_gap_is_flagged() -> None:
    rng = np.random.default_rng(2)
    donors = rng.normal(0, 1, (30, 5))
    fitted = donors.mean(axis=1)
    y = fitted + 0.2 * np.arange(30) + rng.normal(0, 0.1, 30)
    assert any("trends over time" in n for n in fit_warnings(y, fitted, donors))


def test_non_stationary_metric_is_flagged() -> None:
    rng = np.random.default_rng(3)
    trend = 2.0 * np.arange(40) + rng.normal(0, 1, 40)
    assert any("trends in the pre-period" in n for n in stationarity_warnings(trend))
    shift = np.concatenate([rng.normal(0, 0.1, 20).cumsum(), rng.normal(0, 5, 20).cumsum()])
    assert any("variance changes" in n for n in stationarity_warnings(shift))
    assert stationarity_warnings(rng.normal(0, 1, 40)) == []


def test_in_time_warning() -> None:
    assert in_time_warning(0.1, 1.0, 5.0, 3, (-1.0, 1.0)) is None
    note = in_time_warning(3.0, 1.0, 5.0, 3, (-1.0, 1.0))
    assert note is not None
    assert "3 period(s) early" in note
    assert in_time_warning(3.0, 1.0, 5.0, 3) is not None
    assert in_time_warning(1.0, 1.0, 5.0, 3) is None


def test_extreme_coefficients_are_named_with_the_bound() -> None:
    names = ["North Dakota", "South Dakota", "Utah"]
    notes = weight_warnings(np.array([201.3, 68.2, 0.1]), names, "forecast")
    assert len(notes) == 1
    assert notes[0].startswith("extreme donor coefficients (forecast): North Dakota 201.3")
    assert f"bound of {EXTREME_WEIGHT:g}" in notes[0]
    spread = weight_warnings(np.array([2.0, -2.0, 1.5, -1.5, 1.0]), list("abcde"), "augmented")
    assert len(spread) == 1
    assert f"sum to 8, above the bound of {EXTREME_WEIGHT_SUM:g}" in spread[0]
    assert weight_warnings(np.array([0.6, 0.4]), ["a", "b"], "classic") == []


def test_near_exact_fit_with_few_periods_is_a_warning() -> None:
    y = np.array([14828.0, 15207, 15780, 16956, 19366, 22634, 23249, 27568])
    note = near_exact_warning(y, y + 1.5, n_donors=50)
    assert note is not None
    assert "with 50 donors for only 8 pre-periods" in note
    assert near_exact_warning(y, y + 1.5, n_donors=5) is None  # more periods than donors
    assert near_exact_warning(y, y + 800.0, n_donors=50) is None  # not near-exact

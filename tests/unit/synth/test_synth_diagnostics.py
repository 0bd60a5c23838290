from __future__ import annotations

import numpy as np

from splitlab.synth.diagnostics import fit_warnings, in_time_warning, stationarity_warnings


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

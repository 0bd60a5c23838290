from __future__ import annotations

import numpy as np
import pandas as pd

from splitlab.core.synth.counterfactual import Inputs
from splitlab.core.synth.diagnostics import NEAR_EXACT_SHARE
from splitlab.core.synth.forecast import MAX_DF_SHARE, fit_forecast, penalty_grid
from splitlab.core.synth.panel import calendar_features


def test_forecast_extrapolates_outside_the_donor_range() -> None:
    rng = np.random.default_rng(0)
    donors = np.cumsum(rng.normal(0, 1, (40, 5)), axis=0)
    truth = 2.5 * donors[:, 0] - donors[:, 1] + 7
    fit = fit_forecast(Inputs(y_pre=truth[:30], donors=donors, n_pre=30))
    assert np.sqrt(np.mean((fit.values[30:] - truth[30:]) ** 2)) < 0.3
    assert fit.weights[0] > 2.0
    assert fit.details["ridge_alpha"] > 0


def test_calendar_features_capture_seasonality() -> None:
    rng = np.random.default_rng(1)
    months = list(pd.date_range("2018-01-01", periods=48, freq="MS"))
    calendar, _ = calendar_features(months, n_pre=40)
    season = 5 * np.sin(2 * np.pi * np.arange(48) / 12)
    donors = np.cumsum(rng.normal(0, 1, (48, 4)), axis=0)
    truth = donors.mean(axis=1) + season
    with_calendar = fit_forecast(
        Inputs(y_pre=truth[:40], donors=donors, n_pre=40, calendar=calendar)
    )
    without = fit_forecast(Inputs(y_pre=truth[:40], donors=donors, n_pre=40))
    error_with = np.sqrt(np.mean((with_calendar.values[40:] - truth[40:]) ** 2))
    error_without = np.sqrt(np.mean((without.values[40:] - truth[40:]) ** 2))
    assert error_with < 0.5 * error_without


def _short_wide(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Eight pre-periods, fifty random-walk donors, a treated series unrelated to them."""
    rng = np.random.default_rng(seed)
    donors = np.cumsum(rng.normal(0, 1, (13, 50)), axis=0)
    treated = np.cumsum(rng.normal(0, 1, 13))
    return donors, treated


def test_penalty_grid_scales_with_the_standardised_design() -> None:
    donors, _ = _short_wide(0)
    train = donors[:8]
    z = (train - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(penalty_grid(2 * z), 4 * penalty_grid(z))
    # with 8 periods and 50 donors the absolute grid's floor (0.01) lies far below every
    # non-zero squared singular value; the relative one does not
    squares = np.linalg.svd(z, compute_uv=False)[:7] ** 2
    assert squares.min() > 100 * 0.01
    assert penalty_grid(z)[0] > 0.1 * squares.min()


def test_few_periods_many_donors_cannot_interpolate_the_pre_period() -> None:
    for seed in range(5):
        donors, treated = _short_wide(seed)
        fit = fit_forecast(Inputs(y_pre=treated[:8], donors=donors, n_pre=8))
        train = donors[:8]
        z = (train - train.mean(axis=0)) / train.std(axis=0)
        squares = np.linalg.svd(z, compute_uv=False) ** 2
        df = float(np.sum(squares / (squares + fit.details["ridge_alpha"])))
        assert df <= MAX_DF_SHARE * 7 + 1e-9
        # an unrelated series is not reproduced: no near-exact pre-period fit
        assert fit.pre_rmspe(treated[:8]) > NEAR_EXACT_SHARE * float(np.std(treated[:8]))

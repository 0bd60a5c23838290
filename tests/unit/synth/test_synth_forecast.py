from __future__ import annotations

import numpy as np
import pandas as pd

from splitlab.synth.counterfactual import Inputs
from splitlab.synth.forecast import fit_forecast
from splitlab.synth.panel import calendar_features


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

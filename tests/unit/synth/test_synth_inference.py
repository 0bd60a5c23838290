from __future__ import annotations

import math

import numpy as np
import pytest

from splitlab.core.synth.counterfactual import Inputs
from splitlab.core.synth.inference import (
    PlaceboRun,
    in_time_placebo,
    placebo_band,
    placebo_interval,
    placebo_p_value,
    rmspe_ratio,
)


def _run(att: float, pre: float = 1.0, n_pre: int = 4, n_post: int = 2) -> PlaceboRun:
    effects = np.concatenate([np.full(n_pre, pre), np.full(n_post, att)])
    return PlaceboRun(unit="x", effects=effects, pre_rmspe=pre, post_rmspe=abs(att))


def test_p_value_counts_the_treated_unit_itself() -> None:
    assert placebo_p_value(10.0, [1.0, 2.0, 3.0]) == pytest.approx(1 / 4)
    assert placebo_p_value(2.0, [1.0, 2.0, 3.0]) == pytest.approx(3 / 4)
    assert placebo_p_value(0.5, [1.0, 2.0, 3.0]) == 1.0
    assert math.isnan(placebo_p_value(math.nan, [1.0]))
    assert math.isnan(placebo_p_value(1.0, []))


def test_rmspe_ratio_handles_a_perfect_pre_fit() -> None:
    assert rmspe_ratio(2.0, 1.0) == 2.0
    assert rmspe_ratio(1.0, 0.0) == math.inf
    assert math.isnan(rmspe_ratio(0.0, 0.0))


def test_interval_uses_order_statistics_of_placebo_errors() -> None:
    runs = [_run(float(a)) for a in range(-19, 20)]  # 39 placebos: -19..19
    lower, upper, note = placebo_interval(5.0, runs, 4, alpha=0.05)
    # k_lo = floor(0.025 * 40) = 1, k_hi = ceil(0.975 * 40) = 39: the extremes
    assert (lower, upper) == (5.0 - 19, 5.0 + 19)
    assert note is None
    lower, upper, _ = placebo_interval(5.0, runs, 4, alpha=0.2)
    # k_lo = 4 -> -16, k_hi = 36 -> 16
    assert (lower, upper) == (5.0 - 16, 5.0 + 16)


def test_interval_with_few_placebos_reports_its_level() -> None:
    runs = [_run(float(a)) for a in (-2, 0, 1, 3)]
    lower, upper, note = placebo_interval(0.0, runs, 4, alpha=0.05)
    assert (lower, upper) == (-3.0, 2.0)
    assert note is not None
    assert "60.0% interval" in note


def test_band_drops_badly_fitting_placebos() -> None:
    runs = [_run(1.0, pre=1.0), _run(-1.0, pre=1.0), _run(50.0, pre=10.0)]
    band = placebo_band(runs, pre_rmspe=1.0, alpha=0.1)
    assert band is not None
    assert band[1].max() <= 1.0


def test_in_time_placebo_finds_no_effect_where_there_is_none() -> None:
    rng = np.random.default_rng(0)
    donors = np.cumsum(rng.normal(0, 1, (30, 6)), axis=0)
    y = donors[:, :2].mean(axis=1)
    y[24:] += 10  # a real effect after period 24 only
    placebo = in_time_placebo(Inputs(y_pre=y[:24], donors=donors, n_pre=24), "classic", 6)
    assert placebo is not None
    assert placebo.start_index == 18
    assert abs(placebo.att) < 1e-3
    assert in_time_placebo(Inputs(y_pre=y[:3], donors=donors, n_pre=3), "classic", 6) is None

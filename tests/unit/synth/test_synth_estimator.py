from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import splitlab
from splitlab.core.synth import SyntheticControlResult, synthetic_control
from splitlab.core.synth.simulation import factor_panel

from .conftest import long_panel

KEYS = {
    "method",
    "weights",
    "att",
    "att_ci_lower",
    "att_ci_upper",
    "interval_level",
    "rel_att",
    "p_value",
    "pre_rmspe",
    "post_rmspe",
    "effects",
    "warnings",
}
ARGS = {"unit_col": "unit", "time_col": "time", "outcome_col": "outcome"}


def test_public_api_is_exported_lazily() -> None:
    assert splitlab.synthetic_control is synthetic_control
    assert splitlab.SyntheticControlResult is SyntheticControlResult


def test_recovers_a_known_effect_with_the_issue_shape(convex_panel: pd.DataFrame) -> None:
    res = synthetic_control(
        convex_panel, **ARGS, treated="u0", intervention_time=20, method="classic"
    )
    out = res.to_dict()
    assert set(out) == KEYS
    assert out["method"] == "classic"
    assert out["weights"]["u1"] == pytest.approx(0.6, abs=1e-4)
    assert out["weights"]["u2"] == pytest.approx(0.4, abs=1e-4)
    assert sum(out["weights"].values()) == pytest.approx(1.0)
    assert out["att"] == pytest.approx(5.0, abs=1e-3)
    assert out["pre_rmspe"] == pytest.approx(0.0, abs=1e-3)
    assert out["p_value"] == pytest.approx(1 / 9)  # the smallest attainable with 8 donors
    assert out["att_ci_lower"] < 5.0 < out["att_ci_upper"]
    counterfactual_post = np.mean([e["counterfactual"] for e in out["effects"][20:]])
    assert out["rel_att"] == pytest.approx(out["att"] / counterfactual_post)
    assert len(out["effects"]) == 30
    assert set(out["effects"][0]) == {"time", "actual", "counterfactual", "effect"}
    assert out["effects"][21]["effect"] == pytest.approx(5.0, abs=1e-3)
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("method", ["classic", "augmented", "forecast", "auto"])
def test_every_method_detects_a_large_effect(method: str) -> None:
    data = factor_panel(30, 40, 30, effect=8.0, seed=11)
    res = synthetic_control(data, **ARGS, treated="u0", intervention_time=30, method=method)
    assert res.att == pytest.approx(8.0, abs=2.5)
    assert res.p_value <= 2 / 30
    assert 0 < res.att_ci_lower < res.att < res.att_ci_upper
    if method == "auto":
        assert res.selection is not None
        assert res.warnings[0] == res.selection
        assert res.method in {"classic", "augmented", "forecast"}


def test_without_placebo_inference_is_nan_and_json_null() -> None:
    data = factor_panel(10, 30, 20, seed=1)
    res = synthetic_control(
        data, **ARGS, treated="u0", intervention_time=20, method="classic", placebo=False
    )
    assert math.isnan(res.p_value)
    assert res.to_dict()["p_value"] is None
    assert res.to_dict()["att_ci_lower"] is None
    assert any("placebo=False" in w for w in res.warnings)


def test_dates_are_iso_strings_in_the_output() -> None:
    data = factor_panel(8, 20, 14, seed=2)
    data["time"] = pd.Timestamp("2026-01-05") + pd.to_timedelta(data["time"] * 7, unit="D")
    res = synthetic_control(
        data, **ARGS, treated="u0", intervention_time="2026-04-13", method="classic"
    )
    out = res.to_dict()
    assert out["effects"][0]["time"] == "2026-01-05"
    assert out["effects"][14]["time"] == "2026-04-13"


def test_multiple_treated_units_use_their_mean() -> None:
    data = factor_panel(12, 30, 20, effect=0.0, seed=3)
    shifted = data["unit"].isin(["u0", "u1"]) & (data["time"] >= 20)
    data.loc[shifted, "outcome"] += 4.0
    res = synthetic_control(
        data, **ARGS, treated=["u0", "u1"], intervention_time=20, method="augmented"
    )
    assert res.treated == ["u0", "u1"]
    assert "u0" not in res.weights
    assert "u1" not in res.weights
    assert res.att == pytest.approx(4.0, abs=1.5)


def test_constant_outcome_gives_nan_relative_effect_with_a_warning() -> None:
    res = synthetic_control(
        long_panel(np.zeros((5, 10))), **ARGS, treated="u0", intervention_time=6, method="classic"
    )
    assert res.att == 0.0
    assert math.isnan(res.rel_att)
    assert math.isnan(res.p_value)
    assert any("rel_att is undefined" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "method: 'magic' is unknown"),
        ({"alpha": 1.5}, "alpha: must be strictly between 0 and 1"),
        ({"treated": "zz"}, "treated: unit"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    data = factor_panel(5, 12, 8, seed=4)
    base: dict[str, object] = {"treated": "u0", "intervention_time": 8, **ARGS}
    with pytest.raises(ValueError, match=message):
        synthetic_control(data, **{**base, **kwargs})  # type: ignore[arg-type]


def test_covariates_feed_the_classic_method_only() -> None:
    data = factor_panel(10, 24, 18, seed=5)
    data["income"] = np.random.default_rng(0).normal(size=len(data))
    classic = synthetic_control(
        data,
        **ARGS,
        treated="u0",
        intervention_time=18,
        covariates=["income"],
        method="classic",
        placebo=False,
    )
    assert classic.method == "classic"
    forecast = synthetic_control(
        data,
        **ARGS,
        treated="u0",
        intervention_time=18,
        covariates=["income"],
        method="forecast",
        placebo=False,
    )
    assert any("covariates are used by the classic method only" in w for w in forecast.warnings)

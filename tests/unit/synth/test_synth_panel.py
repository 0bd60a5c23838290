from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from splitlab.core.synth.panel import build_panel, calendar_features, missing_cells

from .conftest import long_panel

ARGS = {"unit_col": "unit", "time_col": "time", "outcome_col": "outcome"}


def _panel(n_units: int = 4, n_periods: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return long_panel(rng.normal(size=(n_units, n_periods)))


def test_pivots_and_splits_treated_from_donors() -> None:
    panel, notes = build_panel(_panel(), **ARGS, treated="u2", intervention_time=6)
    assert panel.units == ["u0", "u1", "u2", "u3"]
    assert panel.treated == [2]
    assert panel.donors == [0, 1, 3]
    assert panel.n_pre == 6
    assert panel.outcomes.shape == (4, 10)
    assert panel.times == list(range(10))
    assert notes == []


def test_several_treated_units_are_averaged() -> None:
    panel, _ = build_panel(_panel(5), **ARGS, treated=["u0", "u1"], intervention_time=5)
    np.testing.assert_allclose(panel.treated_outcome(), panel.outcomes[:2].mean(axis=0))
    assert panel.donors == [2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"treated": "nowhere", "intervention_time": 5}, "treated: unit"),
        ({"treated": "u0", "intervention_time": 0}, "intervention_time: 0 is outside"),
        ({"treated": "u0", "intervention_time": 99}, "intervention_time: 99 is outside"),
        ({"treated": "u0", "intervention_time": 2}, "at least 3 are needed"),
        ({"treated": ["u0", "u1", "u2"], "intervention_time": 5}, "at least 2 untreated"),
        ({"treated": "u0", "intervention_time": "soon"}, "intervention_time: 'soon' is not"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_panel(_panel(), **ARGS, **kwargs)  # type: ignore[arg-type]


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="outcome_col: column 'revenue' is not in the data"):
        build_panel(
            _panel(),
            unit_col="unit",
            time_col="time",
            outcome_col="revenue",
            treated="u0",
            intervention_time=5,
        )


def test_duplicate_rows_are_rejected() -> None:
    data = _panel()
    data = pd.concat([data, data.iloc[[3]]])
    with pytest.raises(ValueError, match="more than one row for unit 'u0'"):
        build_panel(data, **ARGS, treated="u0", intervention_time=5)


def test_missing_cells_are_reported_and_can_be_dropped() -> None:
    data = _panel(5)
    data = data[~((data.unit == "u3") & (data.time.isin([2, 3])))].copy()
    data.loc[(data.unit == "u4") & (data.time == 7), "outcome"] = np.nan
    report = missing_cells(data, "unit", "time", "outcome")
    assert report.to_dict("records") == [
        {"unit": "u3", "missing": 2, "first_missing": 2},
        {"unit": "u4", "missing": 1, "first_missing": 7},
    ]
    with pytest.raises(ValueError, match=r"2 unit\(s\) have missing cells.*drop_incomplete=True"):
        build_panel(data, **ARGS, treated="u0", intervention_time=5)
    panel, notes = build_panel(
        data, **ARGS, treated="u0", intervention_time=5, drop_incomplete=True
    )
    assert panel.units == ["u0", "u1", "u2"]
    assert notes == ["dropped 2 donor unit(s) with missing cells: u3, u4"]


def test_missing_cells_in_the_treated_unit_cannot_be_dropped() -> None:
    data = _panel()
    data = data[~((data.unit == "u0") & (data.time == 1))]
    with pytest.raises(ValueError, match="treated: treated unit"):
        build_panel(data, **ARGS, treated="u0", intervention_time=5, drop_incomplete=True)


def test_iso_dates_and_string_intervention_time() -> None:
    data = _panel(3, 8)
    data["time"] = pd.Timestamp("2026-01-05") + pd.to_timedelta(data["time"] * 7, unit="D")
    data["time"] = data["time"].dt.strftime("%Y-%m-%d")
    panel, _ = build_panel(data, **ARGS, treated="u1", intervention_time="2026-02-09")
    assert panel.n_pre == 5
    assert panel.times[5] == pd.Timestamp("2026-02-09")


def test_non_numeric_outcome_is_rejected() -> None:
    data = _panel()
    data["outcome"] = data["outcome"].astype(object)
    data.loc[0, "outcome"] = "n/a"
    with pytest.raises(ValueError, match="outcome_col: column 'outcome' must be numeric"):
        build_panel(data, **ARGS, treated="u1", intervention_time=5)


def test_covariates_are_averaged_over_their_periods() -> None:
    data = _panel(3, 10)
    data["income"] = data["time"] * 1.0 + (data["unit"] == "u1") * 100
    panel, _ = build_panel(
        data, **ARGS, treated="u0", intervention_time=6, covariates={"income": (2, 3)}
    )
    assert panel.predictors is not None
    np.testing.assert_allclose(panel.predictors[:, 0], [2.5, 102.5, 2.5])
    with pytest.raises(ValueError, match="average covariates over pre-intervention periods"):
        build_panel(data, **ARGS, treated="u0", intervention_time=6, covariates={"income": (2, 7)})


def test_calendar_features_need_two_cycles() -> None:
    months = list(pd.date_range("2020-01-01", periods=36, freq="MS"))
    features, names = calendar_features(months, n_pre=30)
    assert features.shape == (36, 12)
    assert names[0] == "month_0"
    np.testing.assert_allclose(features.sum(axis=1), 1.0)
    assert calendar_features(months, n_pre=20)[0].shape == (36, 0)
    assert calendar_features(list(range(36)), n_pre=30)[0].shape == (36, 0)

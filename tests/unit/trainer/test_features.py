"""Metric values from window counts and sums; the design matrix and its imputation (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab_trainer.definitions import MetricSpec
from splitlab_trainer.features import Design, metric_value, raw_features, target
from splitlab_trainer.repository.training_data import UnitRows


def test_metric_values_follow_the_analyzer_semantics() -> None:
    n = np.array([0.0, 1.0, 3.0])
    s = np.array([0.0, 2.0, 9.0])
    assert metric_value("sum", n, s).tolist() == [0.0, 2.0, 9.0]
    assert metric_value("count", n, s).tolist() == [0.0, 1.0, 3.0]
    assert metric_value("any", n, s).tolist() == [0.0, 1.0, 1.0]
    mean = metric_value("mean", n, s)
    assert np.isnan(mean[0])
    assert mean[1:].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="aggregation"):
        metric_value("median", n, s)


def test_design_imputes_with_the_fitted_means_and_flags_missing_values() -> None:
    spec = MetricSpec("order_value", "outcome", "purchase", "mean", None, 14.0, ("spend",))
    rows = UnitRows(
        ["a", "b", "c"],
        {
            "yn0": np.array([1.0, 2.0, 0.0]),
            "ys0": np.array([5.0, 8.0, 0.0]),
            "pn0": np.array([0.0, 2.0, 1.0]),
            "ps0": np.array([0.0, 6.0, 1.0]),
            "f0": np.array([10.0, np.nan, 20.0]),
        },
    )
    y = target(rows, 0, spec)
    assert y[:2].tolist() == [5.0, 4.0]
    assert np.isnan(y[2])
    raw, names = raw_features(rows, 0, spec, ["spend"], ["spend"])
    assert names == ["order_value_pre", "spend"]
    design = Design.fit(raw, names)
    assert design.means == (2.0, 15.0)
    x = design.apply(raw)
    assert x.tolist() == [
        [2.0, 10.0, 1.0, 0.0],
        [3.0, 15.0, 0.0, 1.0],
        [1.0, 20.0, 0.0, 0.0],
    ]
    assert design.columns == [
        "order_value_pre",
        "spend",
        "order_value_pre_missing",
        "spend_missing",
    ]
    # Units predicted later get the same means (a pre-experiment model's units).
    later = design.apply(np.array([[np.nan, np.nan]]))
    assert later.tolist() == [[2.0, 15.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match="columns"):
        design.apply(np.zeros((1, 3)))

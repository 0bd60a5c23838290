"""The pre-experiment model fitted on history, and the bounded boosting search."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from splitlab.core.stats.cupac import (
    DEFAULT_BOOSTING,
    cross_fit_predictions,
    r2_score,
    search_boosting_params,
)
from splitlab.core.stats.cupac_history import fit_on_history

FAST = {"max_iter": 40}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Boosting's OpenMP threads spin against other processes on a busy 2-core machine."""
    with threadpool_limits(1):
        yield


def _nonlinear(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 3))
    y = np.sin(2 * x[:, 0]) * 2 + x[:, 1] ** 2 + rng.normal(0, 0.3, n)
    return x, y


def test_history_model_predicts_new_units_as_well_as_its_holdout() -> None:
    x, y = _nonlinear(2000, 0)
    fit = fit_on_history(x, y, boosting_grid=[FAST])
    assert fit.family == "gradient_boosting"
    assert fit.r2["gradient_boosting"] > fit.r2["linear"] + 0.3
    later_x, later_y = _nonlinear(2000, 1)  # units it never saw (the experiment's)
    assert r2_score(later_y, fit.model.predict(later_x)) == pytest.approx(
        fit.r2["gradient_boosting"], abs=0.05
    )
    assert fit.rows == 2000


def test_history_model_takes_linear_on_linear_data() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 2))
    y = x @ [1.0, -2.0] + rng.normal(size=800)
    fit = fit_on_history(x, y, boosting_grid=[FAST])
    assert fit.family == "linear"
    assert fit.params == {}


def test_history_arguments_are_checked() -> None:
    x, y = _nonlinear(100, 3)
    with pytest.raises(ValueError, match="holdout"):
        fit_on_history(x, y, holdout=1.0)
    with pytest.raises(ValueError, match="models"):
        fit_on_history(x, y, models=["forest"])
    with pytest.raises(ValueError, match="at least 20"):
        fit_on_history(x[:10], y[:10])
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_on_history(x, y)


def test_search_picks_the_setting_with_the_best_validation_r2() -> None:
    x, y = _nonlinear(2000, 4)
    # A stump barely fits the wave; a real model does.
    grid = [{"max_iter": 5, "max_leaf_nodes": 2}, {"max_iter": 80}]
    params, scores = search_boosting_params(x, y, grid)
    assert scores["1"] > scores["0"]
    assert params == {**DEFAULT_BOOSTING, "max_iter": 80}
    with pytest.raises(ValueError, match="grid"):
        search_boosting_params(x, y, [])


def test_cross_fit_with_a_grid_reports_the_chosen_parameters() -> None:
    x, y = _nonlinear(1200, 5)
    fit = cross_fit_predictions(
        x, y, folds=3, boosting_grid=[{"max_iter": 5, "max_leaf_nodes": 2}, {"max_iter": 40}]
    )
    assert fit.model == "gradient_boosting"
    assert fit.params["max_iter"] == 40
    assert any(note.startswith("boosting search R^2") for note in fit.notes)

"""Cross-fitted CUPAC predictions and model choice."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab.core.stats.cupac import cross_fit_predictions, fold_ids

FAST = {"max_iter": 40}


def _nonlinear(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 3))
    y = np.sin(2 * x[:, 0]) * 2 + x[:, 1] ** 2 + rng.normal(0, 0.3, n)
    return x, y


def test_gradient_boosting_wins_on_nonlinear_data() -> None:
    x, y = _nonlinear(1500, 0)
    fit = cross_fit_predictions(x, y, folds=3, boosting_params=FAST)
    assert fit.model == "gradient_boosting"
    assert fit.r2["gradient_boosting"] > fit.r2["linear"] + 0.3
    assert fit.predictions.shape == (1500,)


def test_linear_wins_on_linear_data() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 2))
    y = x @ [1.0, -2.0] + rng.normal(size=1200)
    fit = cross_fit_predictions(x, y, folds=4, boosting_params=FAST)
    assert fit.model == "linear"


def test_predictions_are_out_of_fold() -> None:
    """A unit's own outcome must not influence its prediction."""
    x, y = _nonlinear(600, 2)
    base = cross_fit_predictions(x, y, folds=3, models=["gradient_boosting"], boosting_params=FAST)
    ids = fold_ids(600, 3, 0)
    bumped = y.copy()
    unit = int(np.flatnonzero(ids == 1)[0])
    bumped[unit] += 1000.0
    again = cross_fit_predictions(
        x, bumped, folds=3, models=["gradient_boosting"], boosting_params=FAST
    )
    assert again.predictions[unit] == base.predictions[unit]
    # ... while units of other folds did see it.
    assert not np.allclose(again.predictions[ids != 1], base.predictions[ids != 1])


def test_training_rows_are_capped_and_still_out_of_fold() -> None:
    x, y = _nonlinear(3000, 6)
    capped = cross_fit_predictions(x, y, folds=3, models=["linear"], max_train_rows=300)
    full = cross_fit_predictions(x, y, folds=3, models=["linear"], max_train_rows=None)
    assert not np.allclose(capped.predictions, full.predictions)
    assert capped.r2["linear"] == pytest.approx(full.r2["linear"], abs=0.05)
    ids = fold_ids(3000, 3, 0)
    bumped = y.copy()
    unit = int(np.flatnonzero(ids == 2)[0])
    bumped[unit] += 1e6
    again = cross_fit_predictions(x, bumped, folds=3, models=["linear"], max_train_rows=300)
    assert again.predictions[unit] == capped.predictions[unit]


def test_folds_are_balanced() -> None:
    counts = np.bincount(fold_ids(103, 5, 7))
    assert counts.max() - counts.min() <= 1


def test_time_budget_drops_the_slow_model_with_a_note() -> None:
    x, y = _nonlinear(3000, 3)
    calls: list[tuple[str, int, int]] = []
    fit = cross_fit_predictions(
        x, y, folds=5, time_budget_s=1e-6, progress=lambda d, k, t: calls.append((d, k, t))
    )
    assert fit.model == "linear"
    assert "gradient_boosting" not in fit.r2
    assert any("time budget" in note for note in fit.notes)
    assert calls[-1][1] == calls[-1][2] == 10


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"folds": 1}, "folds"),
        ({"models": ["forest"]}, "models"),
        ({"models": []}, "models"),
        ({"time_budget_s": 0}, "time_budget_s"),
        ({"max_train_rows": 5}, "max_train_rows"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    x, y = _nonlinear(100, 4)
    with pytest.raises(ValueError, match=match):
        cross_fit_predictions(x, y, **kwargs)  # type: ignore[arg-type]


def test_non_finite_inputs_are_rejected() -> None:
    x, y = _nonlinear(100, 5)
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        cross_fit_predictions(x, y)

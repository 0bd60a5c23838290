"""CUPAC (Tang et al., 2020) with mandatory cross-fitting (Guo et al., 2021, "MLRATE").

A scikit-learn model predicts the metric from pre-exposure features; the prediction is then a
covariate like any other (see :mod:`splitlab.core.stats.regression`). When the model is fit on the
experiment's own units, a unit's prediction must not have seen that unit's outcome: an
in-sample fit memorizes part of each outcome -- treatment effect included -- and shrinks the
estimated effect towards zero. So units are split into ``folds`` random folds and each fold is
predicted by a model fit on the others (out-of-fold predictions).

Two candidate models: ordinary least squares (fast, robust) and histogram gradient boosting
(captures nonlinearity and interactions). The one with the higher out-of-fold R^2 wins. The
boosting candidate is dropped when the time budget would be exceeded (projected from its
first fold), with the reason recorded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from splitlab.core.stats.sufficient import FloatArray

__all__ = [
    "BOOSTING_GRID",
    "MODELS",
    "CupacFit",
    "Progress",
    "cross_fit_predictions",
    "fold_ids",
    "make_model",
    "r2_score",
    "search_boosting_params",
]

MODELS: tuple[str, ...] = ("linear", "gradient_boosting")

Progress = Callable[[str, int, int], None]
"""``progress(description, completed, total)``: called after every fitted fold."""

DEFAULT_MAX_TRAIN_ROWS = 250_000
"""Rows each fold's model trains on at most (a random subset of the other folds)."""

DEFAULT_BOOSTING: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
}

BOOSTING_GRID: tuple[dict[str, Any], ...] = (
    {},
    {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 50},
    {"learning_rate": 0.2, "max_leaf_nodes": 63, "min_samples_leaf": 20},
)
"""The bounded hyperparameter search of the boosting candidate: the defaults, a smoother and a
more flexible model (three fits on at most ``SEARCH_ROWS`` rows)."""

SEARCH_ROWS = 50_000
"""Rows of the random subsample the hyperparameter search fits and validates on."""


@dataclass(frozen=True)
class CupacFit:
    predictions: FloatArray
    """Out-of-fold predictions, one per unit, in input order."""
    model: str
    r2: dict[str, float]
    """Out-of-fold R^2 of every candidate that finished."""
    folds: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters of the chosen model (boosting: what the search picked)."""


def make_model(name: str, random_state: int, params: Mapping[str, Any] | None = None) -> Any:
    """A fresh, unfitted candidate model. (scikit-learn is imported here, not at the top: the
    analyzer and the trainer API import this module at start-up, and scikit-learn is half of
    their import time.)"""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    if name == "linear":
        return LinearRegression()
    if name == "gradient_boosting":
        options = {**DEFAULT_BOOSTING, **(params or {})}
        return HistGradientBoostingRegressor(random_state=random_state, **options)
    raise ValueError(f"models must be drawn from {list(MODELS)}; got {name!r}")


def fold_ids(n: int, folds: int, random_state: int) -> np.ndarray:
    """A random balanced assignment of ``n`` units to ``folds`` folds."""
    rng = np.random.default_rng(random_state)
    ids = np.arange(n) % folds
    rng.shuffle(ids)
    return ids


def r2_score(target: FloatArray, predictions: FloatArray) -> float:
    """``1 - SSE / SST``; NaN when the target is constant."""
    total = float(((target - target.mean()) ** 2).sum())
    if total <= 0:
        return math.nan
    return 1.0 - float(((target - predictions) ** 2).sum()) / total


def search_boosting_params(
    x: FloatArray,
    y: FloatArray,
    grid: Sequence[Mapping[str, Any]] = BOOSTING_GRID,
    random_state: int = 0,
    max_rows: int = SEARCH_ROWS,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The boosting parameters of ``grid`` with the best R^2 on a validation fifth of a random
    subsample of at most ``max_rows`` rows, and every entry's R^2 (keyed by its index).

    Choosing one of three settings by a validation R^2 uses each unit's outcome far less than
    a fit does; the predictions stay out of fold (every fold's model is refit without its own
    units), which is what keeps the effect unbiased.
    """
    if not grid:
        raise ValueError("grid must hold at least one parameter set")
    rng = np.random.default_rng(random_state + 7)
    n = y.shape[0]
    rows = rng.choice(n, min(n, max_rows), replace=False)
    cut = max(1, rows.size // 5)
    valid, train = rows[:cut], rows[cut:]
    scores: dict[str, float] = {}
    best: tuple[float, int] = (-math.inf, 0)
    for index, params in enumerate(grid):
        model = make_model("gradient_boosting", random_state, params)
        model.fit(x[train], y[train])
        score = r2_score(y[valid], model.predict(x[valid]))
        scores[str(index)] = score
        if not math.isnan(score) and score > best[0]:
            best = (score, index)
    return {**DEFAULT_BOOSTING, **grid[best[1]]}, scores


def cross_fit_predictions(
    features: ArrayLike,
    target: ArrayLike,
    folds: int = 5,
    models: Sequence[str] = MODELS,
    time_budget_s: float = 300.0,
    random_state: int = 0,
    boosting_params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    max_train_rows: int | None = DEFAULT_MAX_TRAIN_ROWS,
    boosting_grid: Sequence[Mapping[str, Any]] | None = None,
) -> CupacFit:
    """Out-of-fold predictions of ``target`` from ``features`` by the best candidate model.

    ``features`` is ``(n, p)`` (pre-exposure only!) and must be finite; ``target`` is the
    metric, length ``n``. Candidates run in the order given; a candidate after the first is
    abandoned when its projected time would exceed ``time_budget_s``. Each fold's model trains
    on at most ``max_train_rows`` rows drawn at random from the other folds (``None``: all of
    them): beyond a few hundred thousand rows a model of a handful of features gains little
    accuracy, and fitting time grows linearly. With ``boosting_grid``, the boosting candidate's
    parameters are first chosen among the grid's (:func:`search_boosting_params`), unless the
    time spent so far leaves no room for it in the budget.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"features has {x.shape[0]} rows but target has {y.shape[0]}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise ValueError("features and target must be finite; impute or drop missing values")
    if not 2 <= folds <= 20:
        raise ValueError(f"folds must be between 2 and 20 (cross-fitting); got {folds}")
    if not models:
        raise ValueError(f"models must name at least one of {list(MODELS)}")
    for name in models:
        if name not in MODELS:
            raise ValueError(f"models must be drawn from {list(MODELS)}; got {name!r}")
    if max_train_rows is not None and max_train_rows < 100:
        raise ValueError(f"max_train_rows must be >= 100 or None; got {max_train_rows}")
    if not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be > 0 seconds; got {time_budget_s}")
    n = y.shape[0]
    if n < 2 * folds:
        raise ValueError(f"cross-fitting needs at least {2 * folds} units; got {n}")

    started = time.perf_counter()
    ids = fold_ids(n, folds, random_state)
    total_steps = folds * len(models)
    step = 0
    results: dict[str, FloatArray] = {}
    r2: dict[str, float] = {}
    notes: list[str] = []
    chosen: dict[str, dict[str, Any]] = {"linear": {}}
    for index, name in enumerate(models):
        params = dict(boosting_params or {})
        if name == "gradient_boosting":
            if boosting_grid and time.perf_counter() - started < time_budget_s / 4:
                searched, scores = search_boosting_params(
                    x, y, [{**g, **params} for g in boosting_grid], random_state
                )
                params = searched
                notes.append(
                    "boosting search R^2 "
                    + ", ".join(f"{k}: {v:.4f}" for k, v in scores.items())
                    + f"; chose {json_params(params)}"
                )
            chosen[name] = {**DEFAULT_BOOSTING, **params}
        predictions = np.empty(n)
        abandoned = False
        for fold in range(folds):
            fold_started = time.perf_counter()
            train = ids != fold
            rows = np.flatnonzero(train)
            if max_train_rows is not None and rows.size > max_train_rows:
                sampler = np.random.default_rng(random_state + 1000 + fold)
                rows = np.sort(sampler.choice(rows, max_train_rows, replace=False))
            model = make_model(name, random_state + fold, params)
            model.fit(x[rows], y[rows])
            predictions[~train] = model.predict(x[~train])
            step += 1
            if progress is not None:
                progress(f"CUPAC {name} fold {fold + 1}/{folds}", step, total_steps)
            spent = time.perf_counter() - started
            projected = spent + (time.perf_counter() - fold_started) * (folds - fold - 1)
            if index > 0 and projected > time_budget_s:
                notes.append(
                    f"{name} abandoned: projected {projected:.0f} s exceeds the time budget "
                    f"of {time_budget_s:.0f} s"
                )
                abandoned = True
                step = (index + 1) * folds
                if progress is not None:
                    progress(f"CUPAC {name} skipped", step, total_steps)
                break
        if not abandoned:
            results[name] = predictions
            r2[name] = r2_score(y, predictions)
    best = max(results, key=lambda m: -math.inf if math.isnan(r2[m]) else r2[m])
    elapsed = time.perf_counter() - started
    return CupacFit(results[best], best, r2, folds, elapsed, notes, chosen.get(best, {}))


def json_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))

"""CUPAC (Tang et al., 2020) with mandatory cross-fitting (Guo et al., 2021, "MLRATE").

A scikit-learn model predicts the metric from pre-exposure features; the prediction is then a
covariate like any other (see :mod:`splitlab.stats.regression`). When the model is fit on the
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
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression

from splitlab.stats.sufficient import FloatArray

__all__ = ["MODELS", "CupacFit", "Progress", "cross_fit_predictions", "fold_ids", "make_model"]

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


def make_model(name: str, random_state: int, params: Mapping[str, Any] | None = None) -> Any:
    """A fresh, unfitted candidate model."""
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


def _r2(target: FloatArray, predictions: FloatArray) -> float:
    total = float(((target - target.mean()) ** 2).sum())
    if total <= 0:
        return math.nan
    return 1.0 - float(((target - predictions) ** 2).sum()) / total


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
) -> CupacFit:
    """Out-of-fold predictions of ``target`` from ``features`` by the best candidate model.

    ``features`` is ``(n, p)`` (pre-exposure only!) and must be finite; ``target`` is the
    metric, length ``n``. Candidates run in the order given; a candidate after the first is
    abandoned when its projected time would exceed ``time_budget_s``. Each fold's model trains
    on at most ``max_train_rows`` rows drawn at random from the other folds (``None``: all of
    them): beyond a few hundred thousand rows a model of a handful of features gains little
    accuracy, and fitting time grows linearly.
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
    for index, name in enumerate(models):
        predictions = np.empty(n)
        abandoned = False
        for fold in range(folds):
            fold_started = time.perf_counter()
            train = ids != fold
            rows = np.flatnonzero(train)
            if max_train_rows is not None and rows.size > max_train_rows:
                sampler = np.random.default_rng(random_state + 1000 + fold)
                rows = np.sort(sampler.choice(rows, max_train_rows, replace=False))
            model = make_model(name, random_state + fold, boosting_params)
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
            r2[name] = _r2(y, predictions)
    best = max(results, key=lambda m: -math.inf if math.isnan(r2[m]) else r2[m])
    return CupacFit(results[best], best, r2, folds, time.perf_counter() - started, notes)

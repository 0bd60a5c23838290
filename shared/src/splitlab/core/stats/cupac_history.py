"""The pre-experiment CUPAC model (Tang et al., 2020): fitted on history, applied later.

History rows are units observed before the experiment: their features as of a cutoff and the
metric over the window after it. Nothing of the experiment is seen, so the model needs no
cross-fitting: applied to each experiment unit's pre-exposure features it gives a covariate
independent of assignment, and it predicts a unit exposed later without refitting. Candidates
are the in-experiment ones (:data:`splitlab.core.stats.cupac.MODELS`), compared by R^2 on a random
holdout of the history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from splitlab.core.stats.cupac import (
    DEFAULT_BOOSTING,
    DEFAULT_MAX_TRAIN_ROWS,
    MODELS,
    make_model,
    r2_score,
    search_boosting_params,
)

__all__ = ["HistoryFit", "fit_on_history"]


@dataclass(frozen=True)
class HistoryFit:
    model: Any
    """The chosen fitted model (``predict(x)``)."""
    family: str
    params: dict[str, Any]
    r2: dict[str, float]
    """Holdout R^2 of every candidate that was fitted."""
    rows: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)


def fit_on_history(
    features: ArrayLike,
    target: ArrayLike,
    models: Sequence[str] = MODELS,
    random_state: int = 0,
    holdout: float = 0.2,
    max_train_rows: int | None = DEFAULT_MAX_TRAIN_ROWS,
    boosting_grid: Sequence[Mapping[str, Any]] | None = None,
) -> HistoryFit:
    """Fit every candidate on history minus a random ``holdout`` share, keep the one with the
    best R^2 on the holdout. ``features`` ``(n, p)`` and ``target`` must be finite."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"features has {x.shape[0]} rows but target has {y.shape[0]}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise ValueError("features and target must be finite; impute or drop missing values")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be between 0 and 1; got {holdout}")
    for name in models:
        if name not in MODELS:
            raise ValueError(f"models must be drawn from {list(MODELS)}; got {name!r}")
    if not models:
        raise ValueError(f"models must name at least one of {list(MODELS)}")
    n = y.shape[0]
    if n < 20:
        raise ValueError(f"a history fit needs at least 20 units; got {n}")
    started = time.perf_counter()
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    cut = max(2, int(n * holdout))
    valid, train = np.sort(order[:cut]), order[cut:]
    if max_train_rows is not None and train.size > max_train_rows:
        train = rng.choice(train, max_train_rows, replace=False)
    train = np.sort(train)
    fitted: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {}
    r2: dict[str, float] = {}
    notes: list[str] = []
    for name in models:
        chosen: dict[str, Any] = {}
        if name == "gradient_boosting":
            chosen = dict(DEFAULT_BOOSTING)
            if boosting_grid:
                chosen, scores = search_boosting_params(
                    x[train], y[train], boosting_grid, random_state
                )
                notes.append(
                    "boosting search R^2 " + ", ".join(f"{k}: {v:.4f}" for k, v in scores.items())
                )
        model = make_model(name, random_state, chosen if name != "linear" else None)
        model.fit(x[train], y[train])
        fitted[name] = model
        params[name] = chosen
        r2[name] = r2_score(y[valid], model.predict(x[valid]))
    best = max(fitted, key=lambda m: -math.inf if math.isnan(r2[m]) else r2[m])
    return HistoryFit(
        fitted[best], best, params[best], r2, int(n), time.perf_counter() - started, notes
    )

"""From per-unit columns to a model's target and design matrix (pure numpy).

A metric's value comes from its window's event count ``n`` and value sum ``s`` as in the
analyzer: ``sum`` = s, ``count`` = n, ``any`` = (n > 0), ``mean`` = s / n (NaN without events:
the unit has no value and is left out of the fit and of the analysis).

The design matrix holds, in this order, the metric's own pre-period value (when the metric has
a pre-period) and each feature; a column that can be missing (features; the pre-period value of
a ``mean`` metric) is imputed with a mean and accompanied by a 0/1 missing indicator, so a
model can tell "no history" from "average history". The means are those of the rows the model
was fitted on and travel with a pre-experiment model (:class:`Design`), so units it predicts
later are imputed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from splitlab_trainer.definitions import MetricSpec
from splitlab_trainer.repository.training_data import UnitRows


def metric_value(aggregation: str, n: np.ndarray, s: np.ndarray) -> np.ndarray:
    if aggregation == "sum":
        return s.astype(np.float64, copy=True)
    if aggregation == "count":
        return n.astype(np.float64, copy=True)
    if aggregation == "any":
        return (n > 0).astype(np.float64)
    if aggregation == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
    raise ValueError(f"aggregation must be one of sum, count, any, mean; got {aggregation!r}")


def target(rows: UnitRows, k: int, metric: MetricSpec) -> np.ndarray:
    """Metric ``k``'s value in its target window (NaN: no value)."""
    return metric_value(metric.aggregation, rows.columns[f"yn{k}"], rows.columns[f"ys{k}"])


def raw_features(
    rows: UnitRows, k: int, metric: MetricSpec, features: Sequence[str], all_features: list[str]
) -> tuple[np.ndarray, list[str]]:
    """The raw (NaN = missing) columns of metric ``k``'s model and their names."""
    columns: list[np.ndarray] = []
    names: list[str] = []
    if metric.pre_period_days > 0:
        columns.append(
            metric_value(metric.aggregation, rows.columns[f"pn{k}"], rows.columns[f"ps{k}"])
        )
        names.append(metric.pre_covariate)
    for name in features:
        columns.append(rows.columns[f"f{all_features.index(name)}"])
        names.append(name)
    if not columns:
        return np.empty((rows.size, 0)), names
    return np.column_stack(columns), names


@dataclass(frozen=True)
class Design:
    """How raw columns become the design matrix: the names and the imputation means."""

    names: tuple[str, ...]
    means: tuple[float, ...]

    @classmethod
    def fit(cls, raw: np.ndarray, names: Sequence[str]) -> Design:
        means = []
        for j in range(raw.shape[1]):
            present = raw[:, j][~np.isnan(raw[:, j])]
            means.append(float(present.mean()) if present.size else 0.0)
        return cls(tuple(names), tuple(means))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Imputed columns followed by one missing indicator per column."""
        if raw.shape[1] != len(self.names):
            raise ValueError(f"raw has {raw.shape[1]} columns; the design has {len(self.names)}")
        missing = np.isnan(raw)
        filled = np.where(missing, np.asarray(self.means, dtype=np.float64), raw)
        return np.hstack([filled, missing.astype(np.float64)])

    @property
    def columns(self) -> list[str]:
        return [*self.names, *(f"{n}_missing" for n in self.names)]

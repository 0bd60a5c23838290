"""Holdout impact: the global holdout against everyone else, day by day, on one metric.

The global holdout (``HoldoutConfig``: a share of all units, by a hash of the unit id) gets
control in every experiment and keeps the product as it was, while everyone else gets every
change launched since the holdout began. Comparing the two groups estimates the cumulative
effect of all launched changes on a metric.

Input: one row per (unit, day) on which the unit was seen (any event), with the unit's holdout
flag and its metric value that day (0 on a day without the metric's events; ``count`` the number
of the metric's events that day, needed by ``aggregation="mean"``). For every day ``d`` the
population is the units seen on or before ``d``; a unit's value is its metric up to ``d``:
the sum of its values (``sum``; pass event counts as values for a ``count`` metric), whether it
had any event (``any``), or the mean of its events (``mean``; units without events are left
out, as the results do). The effect is ``mean(everyone else) - mean(holdout)`` by Welch's t on
those values (:func:`splitlab.core.stats.means.welch`); with ``sequential=True`` the intervals
and p-values are the always-valid ones (:mod:`splitlab.core.stats.sequential`), so reading the
curve every day stays valid.

Both groups are random samples of the units that were seen at all, so the comparison is
unbiased for the effect on that population. Rejected: comparing the holdout with the units
that had an exposure (held-out units publish none, so "exposed" selects only the non-held-out
units that reached an experiment's surface, and the difference would mix who triggers an
experiment with what the changes do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from splitlab.core.analysis.results import json_number
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.comparison import Comparison, check_alpha
from splitlab.core.stats.means import welch
from splitlab.core.stats.sequential import DEFAULT_TUNING_N, sequential_comparison
from splitlab.core.stats.sufficient import Moments

__all__ = ["HOLDOUT_AGGREGATIONS", "HoldoutDay", "HoldoutImpact", "holdout_impact"]

Aggregation = Literal["sum", "any", "mean"]
HOLDOUT_AGGREGATIONS: tuple[str, ...] = ("sum", "any", "mean")


@dataclass(frozen=True)
class HoldoutDay:
    """The cumulative comparison as of one day."""

    day: Any
    comparison: Comparison
    """``control`` is the holdout, ``treatment`` everyone else."""

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        day = self.day.isoformat() if hasattr(self.day, "isoformat") else self.day
        if isinstance(day, np.generic):
            day = day.item()
        return {
            "day": day,
            "n_holdout": c.n_control,
            "n_exposed": c.n_treatment,
            "mean_holdout": json_number(c.mean_control),
            "mean_exposed": json_number(c.mean_treatment),
            "effect": json_number(c.effect),
            "ci_lower": json_number(c.ci_lower),
            "ci_upper": json_number(c.ci_upper),
            "rel_effect": json_number(c.rel_effect),
            "rel_ci_lower": json_number(c.rel_ci_lower),
            "rel_ci_upper": json_number(c.rel_ci_upper),
            "p_value": json_number(c.p_value),
            "status": c.status,
        }


@dataclass(frozen=True)
class HoldoutImpact:
    metric: str
    aggregation: str
    alpha: float
    sequential: bool
    days: list[HoldoutDay]

    @property
    def latest(self) -> HoldoutDay | None:
        return self.days[-1] if self.days else None

    def to_dict(self) -> dict[str, Any]:
        latest = self.latest
        return {
            "metric": self.metric,
            "aggregation": self.aggregation,
            "alpha": self.alpha,
            "sequential": self.sequential,
            "control": "holdout",
            "days": [d.to_dict() for d in self.days],
            "latest": None if latest is None else latest.to_dict(),
        }


def _column(values: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ArgumentError(name, f"{name} must be one-dimensional; got shape {array.shape}")
    if n is not None and array.shape[0] != n:
        raise ArgumentError(
            name, f"{name} has {array.shape[0]} rows where unit has {n}; pass one per row"
        )
    return array


def _numbers(values: ArrayLike, name: str, n: int) -> np.ndarray:
    array = _column(values, name, n)
    try:
        out = array.astype(np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(name, f"{name} must be numbers; got {array.dtype}") from None
    if not np.isfinite(out).all():
        raise ArgumentError(name, f"{name} must be finite (no NaN or infinity)")
    return out


def holdout_impact(
    unit: ArrayLike,
    day: ArrayLike,
    value: ArrayLike,
    holdout: ArrayLike,
    *,
    count: ArrayLike | None = None,
    aggregation: Aggregation = "sum",
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
    metric: str = "metric",
) -> HoldoutImpact:
    """Per day, the cumulative effect of everything launched: everyone else minus the holdout.

    ``unit``, ``day`` (anything sortable: dates, ISO strings, day numbers), ``value`` and
    ``holdout`` (bool, constant per unit) hold one row per (unit, day) seen; ``count`` the
    metric's events of the row (required for ``mean``).
    """
    alpha = check_alpha(alpha)
    if aggregation not in HOLDOUT_AGGREGATIONS:
        raise ArgumentError(
            "aggregation",
            f"aggregation must be one of {', '.join(HOLDOUT_AGGREGATIONS)}; got {aggregation!r}",
        )
    units = _column(unit, "unit")
    n = units.shape[0]
    days = _column(day, "day", n)
    values = _numbers(value, "value", n)
    flags = _column(holdout, "holdout", n)
    if flags.dtype != np.bool_:
        if not np.isin(flags, (0, 1)).all():
            raise ArgumentError("holdout", "holdout must be booleans (True: in the holdout)")
        flags = flags.astype(bool)
    if aggregation == "mean":
        if count is None:
            raise ArgumentError(
                "count", "count is required with aggregation='mean' (events per row)"
            )
        counts = _numbers(count, "count", n)
    else:
        counts = np.zeros(n) if count is None else _numbers(count, "count", n)
    if (counts < 0).any():
        raise ArgumentError("count", "count must be >= 0 events per row")
    unit_codes, unit_index = np.unique(units, return_inverse=True)
    k = unit_codes.shape[0]
    unit_flag = np.zeros(k, dtype=bool)
    unit_flag[unit_index] = flags
    if (unit_flag[unit_index] != flags).any():
        conflicting = unit_codes[unit_index[unit_flag[unit_index] != flags]][:3]
        raise ArgumentError(
            "holdout",
            f"holdout must be the same on every row of a unit; units {list(conflicting)} differ",
        )
    try:
        day_values, day_index = np.unique(days, return_inverse=True)
    except TypeError:
        raise ArgumentError("day", "day values must be sortable (dates or day numbers)") from None
    seen = np.zeros(k, dtype=bool)
    total = np.zeros(k)
    events = np.zeros(k)
    order = np.argsort(day_index, kind="stable")
    bounds = np.searchsorted(day_index[order], np.arange(day_values.shape[0] + 1))
    out = []
    for d in range(day_values.shape[0]):
        rows = order[bounds[d] : bounds[d + 1]]
        idx = unit_index[rows]
        seen[idx] = True
        np.add.at(total, idx, values[rows])
        np.add.at(events, idx, counts[rows])
        if aggregation == "sum":
            per_unit, keep = total, seen
        elif aggregation == "any":
            per_unit, keep = (total > 0).astype(np.float64), seen
        else:
            keep = seen & (events > 0)
            per_unit = np.divide(total, events, out=np.zeros(k), where=events > 0)
        held = Moments.from_arrays(per_unit[keep & unit_flag])
        rest = Moments.from_arrays(per_unit[keep & ~unit_flag])
        comparison = welch(held, rest, alpha)
        if sequential:
            comparison = sequential_comparison(comparison, tuning_n)
        out.append(HoldoutDay(day_values[d], comparison))
    return HoldoutImpact(metric, aggregation, alpha, sequential, out)

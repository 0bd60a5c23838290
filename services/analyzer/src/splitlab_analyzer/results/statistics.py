"""The results query's answer -> sufficient statistics per metric and variant (pure).

The query returns one row per (variant, missing pattern): units whose imputable covariates
(features, CUPAC predictions, the pre-period value of a ``mean`` metric) are missing in the
same way form a group. Within a group a missing covariate is the same constant for every unit
(the query feeds 0), so it contributes nothing to the centred cross products and only its mean
needs the imputed value: the covariate's mean over every analyzed unit that has it (as
``splitlab.analyze`` imputes). Groups then merge exactly (Chan et al.) into one
:class:`~splitlab.core.stats.sufficient.Moments` per variant. This replaces a window
``AVG() OVER ()`` pass over every unit.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splitlab.core.analysis.analyze import CUPAC_COLUMN, MetricStatistics
from splitlab.core.stats.adjustment import MetricKind
from splitlab.core.stats.sufficient import Moments, merge_all
from splitlab_analyzer.results.plan import PlannedMetric

Row = Mapping[str, Any]


@dataclass(frozen=True)
class ExperimentStatistics:
    metrics: list[MetricStatistics]
    counts: dict[str, int]
    first_exposure_at: Any = None
    last_exposure_at: Any = None
    per_unit: str = "events"
    """Where the per-unit values came from: ``rollups`` (stored) or ``events``."""
    catch_up: Any = None
    """The rollup catch-up that preceded the query (``rollups.store.CatchUp``), if any."""
    period_counts: dict[int, dict[str, int]] = field(default_factory=dict)
    """Units per variant of each allocation period (of their first exposure)."""
    excluded: dict[str, int] = field(default_factory=dict)
    """Stored values left out for being beyond the value limit, per table."""
    unit_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per metric whose test needs them, per variant: its units' values (by ``unit_id``)."""

    @property
    def total_units(self) -> int:
        return sum(self.counts.values())


def imputed_means(rows: Sequence[Row], imputable: Sequence[str]) -> dict[str, float]:
    """Each imputable column's mean over the analyzed units that have it (0 when none has)."""
    out = {}
    for col in imputable:
        n = sum(int(r[f"{col}_count"] or 0) for r in rows)
        total = sum(int(r[f"{col}_count"] or 0) * float(r[f"{col}_avg"] or 0.0) for r in rows)
        out[col] = total / n if n else 0.0
    return out


def group_moments(
    row: Row, k: int, columns: Sequence[str], missing: set[str], means: Mapping[str, float]
) -> Moments:
    """Metric ``k``'s statistics in one group; columns missing there take the imputed mean."""
    n = int(row[f"m{k}_n"] or 0)
    if n == 0:
        return Moments.empty(len(columns))
    mean = np.array(
        [
            means[col] if col in missing else float(row[f"m{k}_mean{a}"])
            for a, col in enumerate(columns)
        ]
    )
    comoment = np.zeros((len(columns), len(columns)))
    for a in range(len(columns)):
        for b in range(a, len(columns)):
            value = row[f"m{k}_s{a}_{b}"]
            comoment[a, b] = comoment[b, a] = 0.0 if value is None else float(value)
    return Moments(n, mean, comoment)


def read_statistics(
    rows: Sequence[Row],
    variants: Sequence[str],
    planned: Sequence[PlannedMetric],
    pre_bases: Sequence[int],
    imputable: Sequence[str],
) -> ExperimentStatistics:
    """Statistics of every planned metric from the grouped rows of the results query."""
    by_variant: dict[str, list[Row]] = {v: [] for v in variants}
    for r in rows:
        by_variant.setdefault(str(r["variant"]), []).append(r)
    counts = {v: sum(int(r["units"]) for r in by_variant[v]) for v in variants}
    period_ids = sorted({_period(r) for r in rows})
    period_counts = {
        p: {v: sum(int(r["units"]) for r in by_variant[v] if _period(r) == p) for v in variants}
        for p in period_ids
    }
    pre_events = {i: sum(int(r[f"y{i}_pre_events"] or 0) for r in rows) for i in pre_bases}
    missing = {c: sum(int(r["units"]) for r in rows if r[f"{c}_missing"]) for c in imputable}
    means = imputed_means(rows, imputable)
    metrics = []
    for k, plan in enumerate(planned):
        cols = plan.columns
        head = 1 if plan.denominator is None else 2
        keep = list(range(head))
        names = [plan.definition.name] if plan.parts is None else list(plan.parts)
        named = {*plan.definition.covariates, *plan.definition.in_experiment_covariates}
        unobserved: list[str] = []
        for offset, cov in enumerate(plan.covariates, start=head):
            if cov.pre_of is not None and pre_events.get(cov.pre_of, 0) == 0:
                continue  # no pre-period events at all: nothing to adjust with
            if cov.imputable and missing[cov.column] >= sum(counts.values()):
                if cov.name in named:  # the owner's feature: say it had no value
                    unobserved.append(cov.name)
                continue  # no unit has a value
            keep.append(offset)
            names.append(cov.name)
        moments = {}
        periods: dict[Hashable, dict[str, Moments]] = {p: {} for p in period_ids}
        binary: list[bool] = []
        dropped = 0
        for v in variants:
            groups = by_variant[v]
            parts: dict[int, list[Moments]] = {p: [] for p in period_ids}
            for row in groups:
                dropped += int(row["units"]) - int(row[f"m{k}_n"] or 0)
                if row[f"m{k}_binary"] is not None:
                    binary.append(bool(row[f"m{k}_binary"]))
                gone = {c for c in imputable if row[f"{c}_missing"]}
                parts[_period(row)].append(group_moments(row, k, cols, gone, means))
            for p in period_ids:
                periods[p][v] = merge_all(parts[p], len(cols)).select(keep)
            moments[v] = merge_all([periods[p][v] for p in period_ids], len(keep))
        kind: MetricKind
        if plan.denominator is not None:
            kind = "ratio"
        else:
            kind = "proportion" if binary and all(binary) else "mean"
        # The CUPAC prediction is a column of its own (method cupac), never a covariate of
        # cuped or regression: as in ``splitlab.analyze``.
        covariates = tuple(n for n in names[head:] if n != CUPAC_COLUMN)
        imputed = sum(
            missing[c.column] for c in plan.covariates if c.name in covariates and c.imputable
        )
        column_names = tuple(names)
        in_experiment = tuple(
            c.name for c in plan.covariates if c.in_experiment and c.name in covariates
        )
        metrics.append(
            MetricStatistics(
                plan.definition.name,
                kind,
                moments,
                column_names,
                covariates,
                dropped_rows=dropped,
                imputed_covariates=imputed,
                periods=periods,
                in_experiment=in_experiment,
                unobserved=tuple(unobserved),
            )
        )
    firsts = [r["first_at"] for r in rows if r["first_at"] is not None]
    lasts = [r["last_at"] for r in rows if r["last_at"] is not None]
    return ExperimentStatistics(
        metrics=metrics,
        counts=counts,
        first_exposure_at=min(firsts) if firsts else None,
        last_exposure_at=max(lasts) if lasts else None,
        period_counts=period_counts,
    )


def _period(row: Row) -> int:
    """A row's allocation period (0 for rows without one: units from before periods)."""
    return int(row.get("allocation_period") or 0)

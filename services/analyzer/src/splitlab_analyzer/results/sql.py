"""The results query: per-unit metric values, then sufficient statistics per variant, in SQL.

Shape (see docs/analyzer.md)::

    units     first exposure per unit (its variant and time)            DISTINCT ON
    o_agg     per unit: outcome aggregates after / before first exposure  JOIN + GROUP BY unit
    p_agg     per unit: prediction latency / error aggregates             JOIN + GROUP BY unit
    c_agg     per unit: CUPAC predictions (pivoted by metric)              GROUP BY unit
    pu        one row per unit: metric values, pre-period values, features (latest before
              first exposure), CUPAC predictions
    filled    missing covariates imputed with their mean over all units (as splitlab.analyze)
    final     GROUP BY variant: n, means (AVG) and centred cross products (REGR_SXY) of every
              metric with its covariates, plus counts of dropped rows and imputed values

Postgres' ``REGR_SXY`` and ``AVG`` are numerically stable (Youngs-Cramer), so the centred
moments come straight from SQL; only one row per variant reaches Python. Every name in the
SQL is generated (``y0``, ``x3``...); values (keys, outcome types, feature names, windows) are
bind parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splitlab.analysis import CUPAC_COLUMN, MetricStatistics
from splitlab.stats.adjustment import MetricKind
from splitlab.stats.sufficient import Moments
from splitlab_analyzer.definitions import MetricDef


@dataclass(frozen=True)
class Covariate:
    column: str
    """Column name in the per-unit CTEs (``x0``...)."""
    name: str
    """Name the engine sees (``<metric>_pre``, a feature name, ``cupac_prediction``)."""
    imputable: bool
    """True when a unit may lack a value (then imputed with the mean)."""
    pre_of: int | None = None
    """For a pre-period covariate: the base metric whose pre-period events decide inclusion."""


@dataclass(frozen=True)
class PlannedMetric:
    definition: MetricDef
    y: str
    """Column of the metric value (plain) or the numerator (ratio)."""
    denominator: str | None = None
    covariates: tuple[Covariate, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        if self.denominator is not None:
            return (self.y, self.denominator)
        return (self.y, *(c.column for c in self.covariates))


@dataclass
class ResultsQuery:
    """Builds the SQL for one experiment's metrics and reads its answer into statistics."""

    experiment_key: str
    variants: Sequence[str]
    metrics: Sequence[MetricDef]
    """The analyzed metrics, in order (primary first)."""
    definitions: Mapping[str, MetricDef]
    """Every definition the metrics may refer to (ratio parts)."""
    cupac_metrics: frozenset[str] = frozenset()
    """Metrics with CUPAC predictions stored for this experiment."""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bases: list[MetricDef] = []
        self.features: list[str] = []
        self.planned: list[PlannedMetric] = []
        self.imputable: list[str] = []
        self._x = 0
        for metric in self.metrics:
            self.planned.append(self._plan(metric))

    # --- planning ----------------------------------------------------------------------------
    def _base(self, metric: MetricDef) -> int:
        for i, base in enumerate(self.bases):
            if base.name == metric.name:
                return i
        self.bases.append(metric)
        return len(self.bases) - 1

    def _feature(self, name: str) -> str:
        if name not in self.features:
            self.features.append(name)
        return f"f{self.features.index(name)}"

    def _plan(self, metric: MetricDef) -> PlannedMetric:
        if metric.is_ratio:
            assert metric.numerator is not None
            assert metric.denominator is not None
            num = self._base(self.definitions[metric.numerator])
            den = self._base(self.definitions[metric.denominator])
            return PlannedMetric(metric, f"y{num}", f"y{den}")
        i = self._base(metric)
        covariates: list[Covariate] = []
        if metric.pre_period_days > 0:
            covariates.append(
                Covariate(f"y{i}_pre", metric.pre_covariate, metric.aggregation == "mean", i)
            )
        covariates.extend(Covariate(self._feature(f), f, True) for f in metric.covariates)
        if metric.name in self.cupac_metrics:
            covariates.append(Covariate(f"c{i}", CUPAC_COLUMN, True))
        for c in covariates:
            if c.imputable and c.column not in self.imputable:
                self.imputable.append(c.column)
        return PlannedMetric(metric, f"y{i}", None, tuple(covariates))

    # --- SQL ---------------------------------------------------------------------------------
    def _window(self, alias: str, i: int, base: MetricDef, pre: bool) -> str:
        t = f"{alias}.occurred_at"
        if pre:
            self.params[f"pre{i}"] = base.pre_period_days * 86400.0
            return f"{t} < u.first_at AND {t} >= u.first_at - make_interval(secs => :pre{i})"
        if base.attribution_window_seconds is None:
            return f"{t} >= u.first_at"
        self.params[f"win{i}"] = base.attribution_window_seconds
        return f"{t} >= u.first_at AND {t} < u.first_at + make_interval(secs => :win{i})"

    def _aggregates(self, alias: str, i: int, base: MetricDef, value: str, match: str) -> list[str]:
        out = []
        periods = [("", False)] + ([("_pre", True)] if base.pre_period_days > 0 else [])
        for suffix, pre in periods:
            cond = f"{match}{self._window(alias, i, base, pre)}"
            if base.aggregation in ("sum", "mean"):
                fn = "sum" if base.aggregation == "sum" else "avg"
                out.append(f"{fn}({value}) FILTER (WHERE {cond}) AS a{i}{suffix}")
            out.append(f"count(*) FILTER (WHERE {cond}) AS n{i}{suffix}")
        return out

    def _value(self, i: int, base: MetricDef, agg: str) -> str:
        a, n = f"a{i}{agg}", f"n{i}{agg}"
        if base.aggregation == "sum":
            return f"coalesce({a}, 0)::float8"
        if base.aggregation == "count":
            return f"coalesce({n}, 0)::float8"
        if base.aggregation == "any":
            return f"(coalesce({n}, 0) > 0)::int::float8"
        return f"{a}::float8"

    def sql(self) -> str:
        self.params.update(key=self.experiment_key, variants=list(self.variants))
        ctes = [
            "units AS MATERIALIZED (SELECT * FROM (SELECT DISTINCT ON (unit_id) unit_id, "
            "variant, occurred_at AS first_at FROM exposures WHERE experiment_key = :key "
            "ORDER BY unit_id, occurred_at, event_id) first "
            "WHERE variant = ANY(CAST(:variants AS text[])))"
        ]
        outcome = [(i, b) for i, b in enumerate(self.bases) if b.source == "outcome"]
        predicted = [(i, b) for i, b in enumerate(self.bases) if b.source != "outcome"]
        joins = []
        if outcome:
            aggs: list[str] = []
            types: list[str] = []
            for i, b in outcome:
                self.params[f"ot{i}"] = b.outcome_type
                types.append(str(b.outcome_type))
                aggs += self._aggregates("o", i, b, "o.value", f"o.outcome_type = :ot{i} AND ")
            self.params["outcome_types"] = sorted(set(types))
            ctes.append(
                f"o_agg AS (SELECT u.unit_id, {', '.join(aggs)} FROM units u "
                "JOIN outcomes o ON o.unit_id = u.unit_id "
                "WHERE o.outcome_type = ANY(CAST(:outcome_types AS text[])) GROUP BY u.unit_id)"
            )
            joins.append("LEFT JOIN o_agg USING (unit_id)")
        if predicted:
            aggs = []
            for i, b in predicted:
                value = (
                    "p.latency_ms"
                    if b.source == "prediction_latency"
                    else ("(p.error IS NOT NULL)::int::float8")
                )
                aggs += self._aggregates("p", i, b, value, "")
            ctes.append(
                f"p_agg AS (SELECT u.unit_id, {', '.join(aggs)} FROM units u "
                "JOIN predictions p ON p.unit_id = u.unit_id AND p.experiment_key = :key "
                "AND NOT p.shadow GROUP BY u.unit_id)"
            )
            joins.append("LEFT JOIN p_agg USING (unit_id)")
        cupac = [
            i
            for i, b in enumerate(self.bases)
            if any(
                c.name == CUPAC_COLUMN for p in self.planned if p.y == f"y{i}" for c in p.covariates
            )
        ]
        if cupac:
            pivots = []
            for i in cupac:
                self.params[f"cm{i}"] = self.bases[i].name
                pivots.append(f"max(prediction) FILTER (WHERE metric = :cm{i}) AS c{i}")
            ctes.append(
                f"c_agg AS (SELECT unit_id, {', '.join(pivots)} FROM cupac_predictions "
                "WHERE experiment_key = :key GROUP BY unit_id)"
            )
            joins.append("LEFT JOIN c_agg USING (unit_id)")
        columns = ["u.unit_id", "u.variant", "u.first_at"]
        for i, b in enumerate(self.bases):
            columns.append(f"{self._value(i, b, '')} AS y{i}")
            if b.pre_period_days > 0:
                columns.append(f"{self._value(i, b, '_pre')} AS y{i}_pre")
                columns.append(f"coalesce(n{i}_pre, 0) AS y{i}_pre_n")
        for j, name in enumerate(self.features):
            self.params[f"feat{j}"] = name
            columns.append(
                "(SELECT f.value FROM unit_features f WHERE f.unit_id = u.unit_id "
                f"AND f.name = :feat{j} AND f.observed_at < u.first_at "
                f"ORDER BY f.observed_at DESC LIMIT 1) AS f{j}"
            )
        columns += [f"c{i}" for i in cupac]
        ctes.append(f"pu AS (SELECT {', '.join(columns)} FROM units u {' '.join(joins)})")
        filled = ["unit_id", "variant", "first_at"]
        for i, b in enumerate(self.bases):
            filled.append(f"y{i}")
            if b.pre_period_days > 0:
                filled.append(f"y{i}_pre_n")
                if f"y{i}_pre" not in self.imputable:
                    filled.append(f"y{i}_pre")
        for col in self.imputable:
            filled.append(f"coalesce({col}, avg({col}) OVER (), 0) AS {col}")
            filled.append(f"({col} IS NULL)::int AS {col}_missing")
        ctes.append(f"filled AS (SELECT {', '.join(filled)} FROM pu)")
        return "WITH " + ",\n".join(ctes)

    def aggregate_sql(self) -> str:
        """The whole query: one row per variant."""
        head = self.sql()
        out = [
            "variant",
            "count(*) AS units",
            "min(first_at) AS first_at",
            "max(first_at) AS last_at",
        ]
        for i, b in enumerate(self.bases):
            if b.pre_period_days > 0:
                out.append(f"sum(y{i}_pre_n) AS y{i}_pre_events")
        out += [f"sum({col}_missing) AS {col}_missing" for col in self.imputable]
        for k, plan in enumerate(self.planned):
            cols = plan.columns
            if plan.denominator is None:
                present = f"{plan.y} IS NOT NULL"
                out.append(f"count({plan.y}) AS m{k}_n")
                out.append(f"bool_and({plan.y} IN (0, 1)) AS m{k}_binary")
            else:
                present = f"{plan.y} IS NOT NULL AND {plan.denominator} IS NOT NULL"
                out.append(f"regr_count({plan.y}, {plan.denominator}) AS m{k}_n")
                out.append(f"false AS m{k}_binary")
            for a, col in enumerate(cols):
                out.append(f"avg({col}) FILTER (WHERE {present}) AS m{k}_mean{a}")
                for z in range(a, len(cols)):
                    out.append(
                        f"regr_sxy({col}, {cols[z]}) FILTER (WHERE {present}) AS m{k}_s{a}_{z}"
                    )
        return f"{head}\nSELECT {', '.join(out)} FROM filled GROUP BY variant"

    def per_unit_sql(self) -> str:
        """Every unit's values (for CUPAC fitting only): ``unit_id``, ``variant``, then columns."""
        head = self.sql()
        return f'{head}\nSELECT * FROM filled ORDER BY unit_id COLLATE "C"'

    # --- reading the answer ------------------------------------------------------------------
    def read(self, rows: Sequence[Mapping[str, Any]]) -> ExperimentStatistics:
        by_variant = {str(r["variant"]): r for r in rows}
        counts = {v: int(by_variant[v]["units"]) if v in by_variant else 0 for v in self.variants}
        pre_events = {
            i: sum(int(r[f"y{i}_pre_events"] or 0) for r in rows)
            for i, b in enumerate(self.bases)
            if b.pre_period_days > 0
        }
        missing = {c: sum(int(r[f"{c}_missing"] or 0) for r in rows) for c in self.imputable}
        metrics = []
        for k, plan in enumerate(self.planned):
            cols = plan.columns
            keep = [0] + ([1] if plan.denominator is not None else [])
            names = [plan.definition.name]
            if plan.denominator is None:
                for offset, cov in enumerate(plan.covariates, start=1):
                    if cov.pre_of is not None and pre_events.get(cov.pre_of, 0) == 0:
                        continue  # no pre-period events at all: nothing to adjust with
                    if cov.imputable and missing[cov.column] >= sum(counts.values()):
                        continue  # no unit has a value
                    keep.append(offset)
                    names.append(cov.name)
            moments = {}
            binary: list[bool] = []
            dropped = 0
            for v in self.variants:
                row = by_variant.get(v)
                n = int(row[f"m{k}_n"]) if row is not None else 0
                if row is not None:
                    dropped += int(row["units"]) - n
                if n == 0 or row is None:
                    moments[v] = Moments.empty(len(keep))
                    continue
                if row[f"m{k}_binary"] is not None:
                    binary.append(bool(row[f"m{k}_binary"]))
                mean = np.array([float(row[f"m{k}_mean{a}"]) for a in range(len(cols))])
                comoment = np.zeros((len(cols), len(cols)))
                for a in range(len(cols)):
                    for b in range(a, len(cols)):
                        value = row[f"m{k}_s{a}_{b}"]
                        comoment[a, b] = comoment[b, a] = 0.0 if value is None else float(value)
                moments[v] = Moments(n, mean, comoment).select(keep)
            kind: MetricKind
            if plan.denominator is not None:
                kind = "ratio"
            else:
                kind = "proportion" if binary and all(binary) else "mean"
            covariates = tuple(names[1:])
            imputed = sum(
                missing[c.column] for c in plan.covariates if c.name in covariates and c.imputable
            )
            column_names = (
                (str(plan.definition.numerator), str(plan.definition.denominator))
                if plan.denominator is not None
                else tuple(names)
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
                )
            )
        firsts = [r["first_at"] for r in rows if r["first_at"] is not None]
        lasts = [r["last_at"] for r in rows if r["last_at"] is not None]
        return ExperimentStatistics(
            metrics=metrics,
            counts=counts,
            first_exposure_at=min(firsts) if firsts else None,
            last_exposure_at=max(lasts) if lasts else None,
        )


@dataclass(frozen=True)
class ExperimentStatistics:
    metrics: list[MetricStatistics]
    counts: dict[str, int]
    first_exposure_at: Any = None
    last_exposure_at: Any = None

    @property
    def total_units(self) -> int:
        return sum(self.counts.values())

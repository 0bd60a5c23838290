"""The results query: per-unit metric values, then sufficient statistics per variant, in SQL.

Shape (see docs/analyzer.md)::

    u         first exposure per unit (its variant and time)               DISTINCT ON
    agg       per unit: every metric's aggregates after / before the first exposure, from one
              hash join of the units with outcomes UNION ALL the experiment's predictions and
              one GROUP BY unit (window conditions computed once per row as flags)
    c_agg     per unit: CUPAC predictions (pivoted by metric)              GROUP BY unit
    pu        one row per unit: metric values, pre-period values, features (latest before
              first exposure), CUPAC predictions
    filled    missing covariates imputed with their mean over the analyzed units
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

QUERY_SETTINGS: tuple[tuple[str, str], ...] = (
    # The per-unit aggregation holds one hash entry per unit (~0.6 kB with five metrics): with
    # the default 4MB everything spills to disk. SET LOCAL: only this transaction.
    ("work_mem", "512MB"),
    # The join of units with events is estimated far too large (no statistics through DISTINCT
    # ON and UNION ALL), which makes the planner sort 2-3 rows per unit for a merge join and
    # spend a second compiling JIT code; a hash join of the units is what it should pick.
    ("enable_mergejoin", "off"),
    ("jit", "off"),
)
"""Planner settings for the results query, applied with ``SET LOCAL`` (see :meth:`settings_sql`)."""


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
        self._flags: dict[str, str] = {}
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
    def _bind(self, name: str, value: Any) -> str:
        """Bind ``value`` as ``:name``, or reuse the parameter already holding an equal value
        (equal conditions then have equal text and become one flag)."""
        for bound, existing in self.params.items():
            if bound.rstrip("0123456789") == name.rstrip("0123456789") and existing == value:
                return bound
        self.params[name] = value
        return name

    def _window(self, alias: str, i: int, base: MetricDef, pre: bool) -> str:
        t = f"{alias}.occurred_at"
        if pre:
            pre_s = self._bind(f"pre{i}", base.pre_period_days * 86400.0)
            return f"{t} < u.first_at AND {t} >= u.first_at - make_interval(secs => :{pre_s})"
        if base.attribution_window_seconds is None:
            return f"{t} >= u.first_at"
        win = self._bind(f"win{i}", base.attribution_window_seconds)
        return f"{t} >= u.first_at AND {t} < u.first_at + make_interval(secs => :{win})"

    def _flag(self, condition: str) -> str:
        """A boolean column of the joined rows (``k0``...), computed once per row."""
        return self._flags.setdefault(condition, f"k{len(self._flags)}")

    def _aggregates(self, alias: str, i: int, base: MetricDef, value: str, match: str) -> list[str]:
        out = []
        periods = [("", False)] + ([("_pre", True)] if base.pre_period_days > 0 else [])
        for suffix, pre in periods:
            flag = self._flag(f"{match}{self._window(alias, i, base, pre)}")
            if base.aggregation in ("sum", "mean"):
                fn = "sum" if base.aggregation == "sum" else "avg"
                out.append(f"{fn}({value}) FILTER (WHERE {flag}) AS a{i}{suffix}")
            out.append(f"count(*) FILTER (WHERE {flag}) AS n{i}{suffix}")
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
        # First exposure per unit. Inlined (not MATERIALIZED): it is read once, so the planner
        # sees its real size and may run the join and the aggregation below in parallel.
        # ``COLLATE "C"`` sorts by bytes (equality of text is bytewise either way).
        units = (
            '(SELECT DISTINCT ON (unit_id COLLATE "C") unit_id, variant, '
            "occurred_at AS first_at FROM exposures WHERE experiment_key = :key "
            'ORDER BY unit_id COLLATE "C", occurred_at, event_id) u'
        )
        outcome = [(i, b) for i, b in enumerate(self.bases) if b.source == "outcome"]
        predicted = [(i, b) for i, b in enumerate(self.bases) if b.source != "outcome"]
        # Every event a metric may count, outcomes and the experiment's predictions, in one
        # relation: one join with the units and one GROUP BY unit compute every metric's
        # per-unit aggregates (``src`` 0 = outcome, 1 = prediction).
        events: list[str] = []
        aggs: list[str] = []
        if outcome:
            types: list[str] = []
            for i, b in outcome:
                ot = self._bind(f"ot{i}", b.outcome_type)
                types.append(str(b.outcome_type))
                aggs += self._aggregates(
                    "e", i, b, "x.value", f"e.src = 0 AND e.outcome_type = :{ot} AND "
                )
            self.params["outcome_types"] = sorted(set(types))
            events.append(
                "SELECT unit_id, occurred_at, 0 AS src, outcome_type, value, "
                "NULL::float8 AS latency_ms, NULL::text AS error FROM outcomes "
                "WHERE outcome_type = ANY(CAST(:outcome_types AS text[]))"
            )
        if predicted:
            for i, b in predicted:
                value = (
                    "x.latency_ms"
                    if b.source == "prediction_latency"
                    else ("(x.error IS NOT NULL)::int::float8")
                )
                aggs += self._aggregates("e", i, b, value, "e.src = 1 AND ")
            events.append(
                "SELECT unit_id, occurred_at, 1 AS src, NULL::text AS outcome_type, "
                "NULL::float8 AS value, latency_ms, error FROM predictions "
                "WHERE experiment_key = :key AND NOT shadow"
            )
        if events:
            # The window conditions become boolean columns of the joined rows, each computed
            # once per row; OFFSET 0 keeps the planner from inlining them back into every
            # aggregate's FILTER (where equal conditions would be evaluated again and again).
            flags = ", ".join(f"{cond} AS {flag}" for cond, flag in self._flags.items())
            ctes = [
                f"agg AS (SELECT unit_id, variant, first_at, {', '.join(aggs)} "
                "FROM (SELECT u.unit_id, u.variant, u.first_at, e.value, e.latency_ms, e.error, "
                f"{flags} FROM {units} LEFT JOIN ({' UNION ALL '.join(events)}) e "
                "ON e.unit_id = u.unit_id OFFSET 0) x GROUP BY unit_id, variant, first_at)"
            ]
        else:
            ctes = [f"agg AS (SELECT u.unit_id, u.variant, u.first_at FROM {units})"]
        joins = []
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
        ctes.append(f"pu AS (SELECT {', '.join(columns)} FROM agg u {' '.join(joins)})")
        # Units whose variant is not in the experiment are left out: by FILTER here and WHERE in
        # the final aggregation, not earlier, so that the planner keeps its row estimates (a
        # filter on the DISTINCT ON output would be pushed down and estimated at ~1.5%).
        analyzed = "variant = ANY(CAST(:variants AS text[]))"
        filled = ["unit_id", "variant", "first_at"]
        for i, b in enumerate(self.bases):
            filled.append(f"y{i}")
            if b.pre_period_days > 0:
                filled.append(f"y{i}_pre_n")
                if f"y{i}_pre" not in self.imputable:
                    filled.append(f"y{i}_pre")
        for col in self.imputable:
            filled.append(
                f"coalesce({col}, avg({col}) FILTER (WHERE {analyzed}) OVER (), 0) AS {col}"
            )
            filled.append(f"({col} IS NULL)::int AS {col}_missing")
        ctes.append(f"filled AS (SELECT {', '.join(filled)} FROM pu)")
        return "WITH " + ",\n".join(ctes)

    @staticmethod
    def settings_sql() -> list[str]:
        """``SET LOCAL`` statements to run in the query's transaction before it."""
        return [f"SET LOCAL {name} = '{value}'" for name, value in QUERY_SETTINGS]

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
        return (
            f"{head}\nSELECT {', '.join(out)} FROM filled "
            "WHERE variant = ANY(CAST(:variants AS text[])) GROUP BY variant"
        )

    def per_unit_sql(self) -> str:
        """Every unit's values (for CUPAC fitting only): ``unit_id``, ``variant``, then columns."""
        head = self.sql()
        return (
            f"{head}\nSELECT * FROM filled WHERE variant = ANY(CAST(:variants AS text[])) "
            'ORDER BY unit_id COLLATE "C"'
        )

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

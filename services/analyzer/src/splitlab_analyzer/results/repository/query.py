"""The results query: per-unit metric values, then sufficient statistics per variant, in SQL.

Shape (see docs/analyzer.md)::

    slots   per unit: events and value sums per slot (stream x window around the first
            exposure), either stored (``unit_rollups``, kept by the consumer) or computed from
            the events (``experiment_units`` joined once with outcomes UNION ALL the
            experiment's predictions, one GROUP BY unit)
    c_agg   per unit: CUPAC predictions (pivoted by metric)
    pu      one row per unit: metric values and pre-period values from the slots, features
            (latest before the first exposure), CUPAC predictions
    final   GROUP BY variant, allocation period and missing pattern of the imputable
            covariates: n, means and centred cross products (REGR_* sharing one state per
            column pair), null counts

Only a few rows per variant reach Python (:mod:`splitlab_analyzer.results.statistics` imputes
missing covariates and merges the groups). Postgres' regression aggregates are numerically
stable (Youngs-Cramer). Every name in the SQL is generated (``y0``, ``x3``...); values (keys,
outcome types, feature names, windows) are bind parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from splitlab.contracts.values import MAX_ABS_VALUE
from splitlab.core.analysis.analyze import CUPAC_COLUMN
from splitlab.core.analysis.segments import SegmentSpec
from splitlab.core.stats.metric_tests import PER_UNIT_TESTS
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.results.plan import Covariate, PlannedMetric
from splitlab_analyzer.results.segments import SEGMENT_COLUMN, segment_expression, segment_join
from splitlab_analyzer.results.statistics import ExperimentStatistics, read_statistics
from splitlab_analyzer.rollups.plan import RollupPlan, post_slot, pre_slot
from splitlab_analyzer.rollups.repository import Binder, unit_slots_sql
from splitlab_analyzer.rollups.store import work_mem_mb

__all__ = ["Covariate", "ExperimentStatistics", "PlannedMetric", "ResultsQuery"]


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
    shadows: Sequence[str] = ()
    """Shadow variants (weight 0): aggregated too, but read apart (:meth:`shadow_summary`)."""
    rollup_plan: RollupPlan | None = None
    """The slots to read (default: the metrics' own). A query over some of an experiment's
    metrics (the guardrail pass) reads the experiment's whole plan, so its rollups match."""
    segment: SegmentSpec | None = None
    """Group by this attribute of each unit's first exposure too (results by segment)."""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bases: list[MetricDef] = []
        self.features: list[str] = []
        self.in_features: list[str] = []
        """Features observed at or after the first exposure (CUNOPAC), columns ``g0``..."""
        self.planned: list[PlannedMetric] = []
        self.imputable: list[str] = []
        for metric in self.metrics:
            self.planned.append(self._plan(metric))
        self.plan = self.rollup_plan or RollupPlan.for_metrics(self.bases)
        """The slots the metrics read (what ``unit_rollups`` must hold to be used)."""
        self._bind = Binder("named", self.params)

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

    def _in_feature(self, name: str) -> str:
        if name not in self.in_features:
            self.in_features.append(name)
        return f"g{self.in_features.index(name)}"

    def _features_of(self, metric: MetricDef) -> list[Covariate]:
        """The metric's pre-exposure features, then its in-experiment ones (CUNOPAC)."""
        return [Covariate(self._feature(f), f, True) for f in metric.covariates] + [
            Covariate(self._in_feature(f), f, True, in_experiment=True)
            for f in metric.in_experiment_covariates
        ]

    def _imputable(self, covariates: list[Covariate]) -> None:
        for c in covariates:
            if c.imputable and c.column not in self.imputable:
                self.imputable.append(c.column)

    def _plan(self, metric: MetricDef) -> PlannedMetric:
        covariates: list[Covariate] = []
        if metric.is_ratio:
            assert metric.numerator is not None
            assert metric.denominator is not None
            parts = [self.definitions[metric.numerator], self.definitions[metric.denominator]]
            num, den = (self._base(p) for p in parts)
            # Ratio CUPED: the pre-period values of both parts, when both have a pre-period.
            if all(p.pre_period_days > 0 for p in parts) and num != den:
                covariates += [
                    Covariate(f"y{j}_pre", p.pre_covariate, p.aggregation == "mean", j)
                    for j, p in zip((num, den), parts, strict=True)
                ]
            covariates += self._features_of(metric)
            self._imputable(covariates)
            return PlannedMetric(
                metric,
                f"y{num}",
                f"y{den}",
                tuple(covariates),
                (str(metric.numerator), str(metric.denominator)),
            )
        i = self._base(metric)
        if metric.aggregation == "event_mean":
            # The per-event mean: the ratio of the units' sums and event counts.
            if metric.pre_period_days > 0:
                covariates += [
                    Covariate(f"y{i}_pre", f"{metric.pre_covariate}_sum", False, i),
                    Covariate(f"y{i}_pre_n", f"{metric.pre_covariate}_events", False, i),
                ]
            covariates += self._features_of(metric)
            self._imputable(covariates)
            return PlannedMetric(
                metric,
                f"y{i}",
                f"y{i}_n",
                tuple(covariates),
                (f"sum({metric.name})", f"events({metric.name})"),
            )
        if metric.pre_period_days > 0:
            covariates.append(
                Covariate(f"y{i}_pre", metric.pre_covariate, metric.aggregation == "mean", i)
            )
        covariates.extend(Covariate(self._feature(f), f, True) for f in metric.covariates)
        covariates.extend(
            Covariate(self._in_feature(f), f, True, in_experiment=True)
            for f in metric.in_experiment_covariates
        )
        if metric.name in self.cupac_metrics:
            covariates.append(Covariate(f"c{i}", CUPAC_COLUMN, True))
        self._imputable(covariates)
        return PlannedMetric(metric, f"y{i}", None, tuple(covariates))

    @property
    def pre_bases(self) -> list[int]:
        return [i for i, b in enumerate(self.bases) if b.pre_period_days > 0]

    # --- SQL ---------------------------------------------------------------------------------
    def _value(self, base: MetricDef, pre: bool) -> str:
        """The metric's per-unit value from its slot of unit row ``u``."""
        slot = pre_slot(base) if pre else post_slot(base)
        assert slot is not None
        j = self.plan.index(slot)
        n, s = f"u.n{j}", f"u.s{j}"
        if base.aggregation == "sum" or (base.aggregation == "event_mean" and pre):
            return f"{s}::float8"
        if base.aggregation == "event_mean":
            return f"(CASE WHEN {n} > 0 THEN {s} END)::float8"
        if base.aggregation == "count":
            return f"{n}::float8"
        if base.aggregation == "any":
            return f"({n} > 0)::int::float8"
        return f"({s} / nullif({n}, 0))::float8"

    def _per_unit(self, rollups: bool) -> list[str]:
        """CTEs up to ``pu``: one row per unit of the experiment (any variant)."""
        key = self._bind("key", self.experiment_key)
        ctes: list[str] = []
        if rollups:
            table, where = "unit_rollups u", f" WHERE u.experiment_key = {key}"
        else:
            if self.plan.slots:
                slots = unit_slots_sql(self.plan, self._bind, key)
            else:
                slots = (
                    "SELECT unit_id, variant, first_at, allocation_period FROM experiment_units "
                    f"WHERE experiment_key = {key}"
                )
            ctes.append(f"slots AS ({slots})")
            table, where = "slots u", ""
        joins = ""
        cupac = [
            i
            for i, b in enumerate(self.bases)
            if any(
                c.name == CUPAC_COLUMN for p in self.planned if p.y == f"y{i}" for c in p.covariates
            )
        ]
        if cupac:
            pivots = [
                f"max(prediction) FILTER (WHERE metric = {self._bind('cm', self.bases[i].name)}) "
                f"AS c{i}"
                for i in cupac
            ]
            ctes.append(
                f"c_agg AS (SELECT unit_id, {', '.join(pivots)} FROM cupac_predictions "
                f"WHERE experiment_key = {key} GROUP BY unit_id)"
            )
            joins = " LEFT JOIN c_agg ON c_agg.unit_id = u.unit_id"
        columns = ["u.unit_id", "u.variant", "u.first_at", "u.allocation_period"]
        for i, b in enumerate(self.bases):
            columns.append(f"{self._value(b, pre=False)} AS y{i}")
            if b.aggregation == "event_mean":
                post = post_slot(b)
                columns.append(f"nullif(u.n{self.plan.index(post)}, 0)::float8 AS y{i}_n")
            if b.pre_period_days > 0:
                pre = pre_slot(b)
                assert pre is not None
                columns.append(f"{self._value(b, pre=True)} AS y{i}_pre")
                columns.append(f"u.n{self.plan.index(pre)} AS y{i}_pre_n")
        for j, name in enumerate(self.features):
            feature = self._bind("feat", name)
            columns.append(
                "(SELECT f.value FROM unit_features f WHERE f.unit_id = u.unit_id "
                f"AND f.name = {feature} AND f.observed_at < u.first_at "
                f"AND abs(f.value) <= {self._bind('vmax', MAX_ABS_VALUE)} "
                f"ORDER BY f.observed_at DESC LIMIT 1) AS f{j}"
            )
        for j, name in enumerate(self.in_features):
            feature = self._bind("feat", name)
            columns.append(
                "(SELECT f.value FROM unit_features f WHERE f.unit_id = u.unit_id "
                f"AND f.name = {feature} AND f.observed_at >= u.first_at "
                f"AND abs(f.value) <= {self._bind('vmax', MAX_ABS_VALUE)} "
                f"ORDER BY f.observed_at DESC LIMIT 1) AS g{j}"
            )
        columns += [f"c_agg.c{i}" for i in cupac]
        if self.segment is not None:
            # The stored rollups carry the attributes; from the events, join the first exposures.
            source = "u.attributes" if rollups else "eu.attributes"
            joins += "" if rollups else segment_join(key)
            segment = segment_expression(self.segment, self._bind, source)
            columns.append(f"{segment} AS {SEGMENT_COLUMN}")
        ctes.append(f"pu AS (SELECT {', '.join(columns)} FROM {table}{joins}{where})")
        return ctes

    def settings_sql(self, rollups: bool = False, units: int = 0) -> list[str]:
        """``SET LOCAL`` statements to run in the query's transaction before it.

        From the events, the per-unit aggregation holds one hash entry per unit: ``work_mem``
        is sized from the unit count. JIT compilation costs more than it saves here. By
        segment, from the rollups: hash the groups (see below).
        """
        out = ["SET LOCAL jit = off"]
        if self.segment is not None and rollups:
            # Postgres cannot estimate how many values a JSON attribute takes, guesses tens of
            # thousands of groups and sorts every unit; a handful of groups hash in memory
            # (measured on 300,000 units: 0.50 s sorted, 0.27 s hashed, plain 0.24 s).
            out.append("SET LOCAL enable_sort = off")
        if not rollups:
            out.append(f"SET LOCAL work_mem = '{work_mem_mb(units, len(self.plan.slots))}MB'")
        return out

    def _analyzed(self) -> str:
        return f"variant = ANY(CAST({self._bind('variants', list(self.variants))} AS text[]))"

    def aggregate_sql(self, rollups: bool = False) -> str:
        """The whole query: a row per (variant, allocation period, missing pattern of the
        imputable covariates)."""
        ctes = self._per_unit(rollups)
        pattern = [f"({col} IS NULL)" for col in self.imputable]
        by_segment = [SEGMENT_COLUMN] if self.segment is not None else []
        out = [
            "variant",
            "allocation_period",
            *by_segment,
            *(f"{p} AS {col}_missing" for p, col in zip(pattern, self.imputable, strict=True)),
            "count(*) AS units",
            "min(first_at) AS first_at",
            "max(first_at) AS last_at",
        ]
        out += [f"sum(y{i}_pre_n) AS y{i}_pre_events" for i in self.pre_bases]
        for col in self.imputable:
            out += [f"count({col}) AS {col}_count", f"avg({col}) AS {col}_avg"]
        for k, plan in enumerate(self.planned):
            # A missing covariate is a constant (0) within its group; Python gives it the mean.
            cols = [f"coalesce({c}, 0)" if c in self.imputable else c for c in plan.columns]
            if plan.denominator is None:
                present = f"{plan.y} IS NOT NULL"
                out.append(f"count({plan.y}) AS m{k}_n")
                out.append(f"bool_and({plan.y} IN (0, 1)) AS m{k}_binary")
            else:
                present = f"{plan.y} IS NOT NULL AND {plan.denominator} IS NOT NULL"
                out.append(f"regr_count({plan.y}, {plan.denominator}) AS m{k}_n")
                out.append(f"false AS m{k}_binary")
            out += self._moments(k, cols, present)
        group = ", ".join(["variant", "allocation_period", *by_segment, *pattern])
        shown = [*self.variants, *self.shadows]
        where = f"variant = ANY(CAST({self._bind('shown', shown)} AS text[]))"
        return (
            f"WITH {', '.join(ctes)}\nSELECT {', '.join(out)} FROM pu "
            f"WHERE {where} GROUP BY {group}"
        )

    @staticmethod
    def _moments(k: int, cols: Sequence[str], present: str) -> list[str]:
        """Means and centred cross products of ``cols``: ``m{k}_mean{a}``, ``m{k}_s{a}_{b}``.

        ``regr_*(Y, X)`` aggregates with equal arguments and filter share one transition state
        in Postgres, so each column pair is accumulated once.
        """
        f = f"FILTER (WHERE {present})"
        c0 = cols[0]
        if len(cols) == 1:
            return [
                f"regr_avgx({c0}, {c0}) {f} AS m{k}_mean0",
                f"regr_sxx({c0}, {c0}) {f} AS m{k}_s0_0",
            ]
        out = [
            f"regr_avgy({c0}, {cols[1]}) {f} AS m{k}_mean0",
            f"regr_syy({c0}, {cols[1]}) {f} AS m{k}_s0_0",
        ]
        for b in range(1, len(cols)):
            out += [
                f"regr_avgx({c0}, {cols[b]}) {f} AS m{k}_mean{b}",
                f"regr_sxx({c0}, {cols[b]}) {f} AS m{k}_s{b}_{b}",
                f"regr_sxy({c0}, {cols[b]}) {f} AS m{k}_s0_{b}",
            ]
        for a in range(1, len(cols)):
            for b in range(a + 1, len(cols)):
                out.append(f"regr_sxy({cols[a]}, {cols[b]}) {f} AS m{k}_s{a}_{b}")
        return out

    def per_unit_sql(self, rollups: bool = False) -> str:
        """Every unit's values (for CUPAC fitting only): ``unit_id``, ``variant``, then columns,
        missing covariates imputed with their mean over the analyzed units."""
        ctes = self._per_unit(rollups)
        analyzed = self._analyzed()
        filled = ["unit_id", "variant", "first_at", "allocation_period"]
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
        return (
            f"WITH {', '.join(ctes)}\nSELECT * FROM filled WHERE {analyzed} "
            'ORDER BY unit_id COLLATE "C"'
        )

    @property
    def per_unit_metrics(self) -> list[str]:
        """The plain metrics whose test needs every unit's value (Mann-Whitney, bootstrap)."""
        return [
            p.definition.name
            for p in self.planned
            if p.denominator is None and p.definition.test in PER_UNIT_TESTS
        ]

    def values_sql(self, rollups: bool = False) -> str:
        """Every analyzed unit's value of :attr:`per_unit_metrics` (``variant``, ``v0``, ...),
        in ascending ``unit_id`` (byte order), the order a seeded bootstrap resamples."""
        ctes = self._per_unit(rollups)
        wanted = self.per_unit_metrics
        columns = [p.y for p in self.planned if p.definition.name in wanted]
        values = ", ".join(f"{y} AS v{j}" for j, y in enumerate(columns))
        return (
            f"WITH {', '.join(ctes)}\nSELECT variant, {values} FROM pu "
            f'WHERE {self._analyzed()} ORDER BY unit_id COLLATE "C"'
        )

    def excluded_sql(self) -> str:
        """How many stored values of the experiment's units the query leaves out for being
        beyond :data:`~splitlab.contracts.values.MAX_ABS_VALUE` (columns ``outcomes``,
        ``unit_features``): rows stored before the edges held the limit. Partial indexes of
        such rows (migration 0008) make this a look-up, not a scan."""
        key = self._bind("key", self.experiment_key)
        beyond = f"abs(x.value) > {self._bind('vmax', MAX_ABS_VALUE)}"
        # A scalar subquery, not a join: Postgres runs it per row of the (tiny) partial index
        # instead of hashing every unit of the experiment (it cannot estimate the partial
        # index's rows; measured 0.23 s for 200,000 units as a join, see docs/analyzer.md).
        mine = (
            f"(SELECT 1 FROM experiment_units u WHERE u.experiment_key = {key} "
            "AND u.unit_id = x.unit_id) = 1"
        )
        counts = []
        for table, column, names in (
            ("outcomes", "outcome_type", self.plan.outcome_types),
            ("unit_features", "name", [*self.features, *self.in_features]),
        ):
            if names:
                wanted = f"x.{column} = ANY(CAST({self._bind('xn', list(names))} AS text[]))"
                counts.append(
                    f"(SELECT count(*) FROM {table} x WHERE {beyond} AND {wanted} AND {mine}) "
                    f"AS {table}"
                )
            else:
                counts.append(f"0 AS {table}")
        return f"SELECT {', '.join(counts)}"

    # --- reading the answer ------------------------------------------------------------------
    def read(self, rows: Sequence[Mapping[str, Any]]) -> ExperimentStatistics:
        """Statistics of the analyzed variants (shadow variants' rows are left out)."""
        analyzed = set(self.variants)
        rows = [r for r in rows if r["variant"] in analyzed]
        return read_statistics(rows, self.variants, self.planned, self.pre_bases, self.imputable)

    def shadow_summary(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Per shadow variant: its units and each metric's mean over them (None without
        units; a ratio metric's is the ratio of the means)."""
        out: dict[str, dict[str, Any]] = {}
        for variant in self.shadows:
            mine = [r for r in rows if r["variant"] == variant]
            means: dict[str, float | None] = {}
            for k, plan in enumerate(self.planned):
                n = sum(int(r[f"m{k}_n"] or 0) for r in mine)
                parts = [0] if plan.denominator is None else [0, 1]
                totals = [
                    sum(int(r[f"m{k}_n"] or 0) * float(r[f"m{k}_mean{a}"] or 0.0) for r in mine)
                    for a in parts
                ]
                value: float | None = None
                if n and plan.denominator is None:
                    value = totals[0] / n
                elif n and totals[1] != 0:
                    value = totals[0] / totals[1]
                means[plan.definition.name] = value
            out[variant] = {"units": sum(int(r["units"]) for r in mine), "means": means}
        return out

"""Results of one experiment: definitions -> SQL statistics -> ``splitlab`` engine -> JSON.

The answer is ``splitlab.analyze``'s JSON shape (``AnalysisResult.to_dict()``) with the
analyzer's additions under their own keys: ``experiment``, ``sample`` (units per variant,
planned sample, enrolment rate, days to plan, power so far), ``monitoring`` (always-valid
p-values and confidence sequences of every comparison), ``guardrails`` (the one-sided
always-valid test of each guardrail), ``flags`` and ``computed_at``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from splitlab.contracts.values import MAX_ABS_VALUE
from splitlab.core.analysis.analyze import AnalysisResult, analyze_statistics
from splitlab.core.analysis.results import json_number
from splitlab.core.stats.adjustment import METHODS
from splitlab.core.stats.sequential import DEFAULT_TUNING_N
from splitlab.platform.errors import InvalidInputError, NotFoundError
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.repositories import (
    CupacRepository,
    ExperimentInfo,
    ExperimentRepository,
    MetricRepository,
    fallback_counts,
)
from splitlab_analyzer.results.monitoring import (
    GuardrailStatus,
    days_to_planned,
    guardrail_statuses,
    power_at_planned,
    power_so_far,
)
from splitlab_analyzer.results.periods import period_options
from splitlab_analyzer.results.sql import ExperimentStatistics, ResultsQuery
from splitlab_analyzer.rollups.store import (
    MAX_CATCH_UP_UNITS,
    CatchUp,
    RollupStore,
    built_digest,
    count_units,
)

logger = logging.getLogger(__name__)


class NoExposuresError(NotFoundError):
    """The experiment exists but none of its exposures is stored yet: nothing to analyse (404
    to a caller; the background passes count it as analysed, not as a failure)."""


@dataclass(frozen=True)
class Computed:
    """One computation: the JSON answer plus what guardrail automation and gauges need."""

    body: dict[str, Any]
    result: AnalysisResult
    monitoring: AnalysisResult
    guardrails: list[GuardrailStatus]
    experiment: ExperimentInfo
    fallback: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Per variant: predictions, fallbacks, share (experiments served through /predict)."""
    mostly_fell_back: list[str] = dataclasses.field(default_factory=list)
    """Treatments whose fallback share is above the threshold."""


class ResultsService:
    def __init__(
        self,
        engine: Engine,
        experiments: ExperimentRepository,
        metrics: MetricRepository,
        cupac: CupacRepository,
        fallback_share_threshold: float = 0.5,
        fallback_min_predictions: int = 20,
    ) -> None:
        self.engine = engine
        self.fallback_share_threshold = fallback_share_threshold
        self.fallback_min_predictions = fallback_min_predictions
        self.experiments = experiments
        self.metrics = metrics
        self.cupac = cupac
        self.rollups = RollupStore(engine)

    # --- inputs ------------------------------------------------------------------------------
    def experiment(self, key: str) -> ExperimentInfo:
        info = self.experiments.get(key)
        if info is None:
            raise NotFoundError(f"no experiment with key {key!r}", field="key")
        return info

    def definitions(self, info: ExperimentInfo) -> tuple[list[MetricDef], dict[str, MetricDef]]:
        """The experiment's metric definitions (primary first) and every one they refer to."""
        found = self.metrics.many(info.metric_names)
        parts = [p for d in found.values() if d.is_ratio for p in (d.numerator, d.denominator) if p]
        found.update(self.metrics.many(p for p in parts if p not in found))
        missing = [n for n in info.metric_names if n not in found]
        missing += [p for p in parts if p not in found]
        if missing:
            raise InvalidInputError(
                f"metrics {sorted(set(missing))} of experiment {info.key!r} have no definition; "
                "create them with POST /metrics or `splitlab metrics create`",
                field="metrics",
            )
        return [found[n] for n in info.metric_names], found

    def query(self, info: ExperimentInfo, only: Sequence[str] | None = None) -> ResultsQuery:
        """The experiment's results query; ``only`` restricts it to those metrics (it still
        reads the rollup plan of all of them, so stored rollups are used)."""
        metrics, found = self.definitions(info)
        cupac = self.cupac.metrics_with_predictions(info.key)
        plan = None
        if only is not None:
            plan = ResultsQuery(info.key, info.analyzed_variants, metrics, found, cupac).plan
            metrics = [m for m in metrics if m.name in only]
        return ResultsQuery(
            info.key,
            info.analyzed_variants,
            metrics,
            found,
            cupac_metrics=cupac,
            shadows=info.shadow_variants,
            rollup_plan=plan,
        )

    def catch_up_rollups(self, key: str, query: ResultsQuery) -> CatchUp | None:
        """When the experiment's built rollups hold the slots ``query`` needs and the backlog
        is short (:data:`~splitlab_analyzer.rollups.store.MAX_CATCH_UP_UNITS`), bring them up
        to date and return what that took; else None (compute from the events)."""
        with self.engine.connect() as connection:
            if built_digest(connection, key) != query.plan.digest:
                return None
        if self.rollups.backlog_units() > MAX_CATCH_UP_UNITS:
            return None
        return self.rollups.catch_up()

    def statistics(
        self, info: ExperimentInfo, query: ResultsQuery | None = None
    ) -> tuple[ExperimentStatistics, dict[str, dict[str, Any]]]:
        """From the rollups (caught up first) when they hold the slots the metrics need, else
        from the events; one snapshot (REPEATABLE READ). Also the shadow variants' summary."""
        query = query or self.query(info)
        caught = self.catch_up_rollups(info.key, query)
        with self.engine.connect().execution_options(
            isolation_level="REPEATABLE READ"
        ) as connection:
            rollups = caught is not None and built_digest(connection, info.key) == query.plan.digest
            units = 0 if rollups else count_units(connection, info.key)
            for statement in query.settings_sql(rollups, units):
                connection.execute(text(statement))
            sql = query.aggregate_sql(rollups)
            rows = [dict(r) for r in connection.execute(text(sql), query.params).mappings()]
            excluded = connection.execute(text(query.excluded_sql()), query.params).mappings()
            beyond = {str(k): int(v) for k, v in excluded.one().items()}
        stats = query.read(rows)
        stats = dataclasses.replace(
            stats,
            per_unit="rollups" if rollups else "events",
            catch_up=caught,
            excluded=beyond,
        )
        return stats, query.shadow_summary(rows)

    def fallback(self, info: ExperimentInfo) -> dict[str, dict[str, Any]]:
        """Per analyzed variant of an experiment served through ``/predict``: predictions, how
        many fell back to control's model, and the share (empty without models)."""
        if not info.models:
            return {}
        with self.engine.connect() as connection:
            counts = fallback_counts(connection, info.key)
        out = {}
        for variant in info.analyzed_variants:
            total, fell = counts.get(variant, (0, 0))
            out[variant] = {
                "predictions": total,
                "fallbacks": fell,
                "share": fell / total if total else None,
            }
        return out

    def build_rollups(self, key: str) -> bool:
        """Store (or rebuild) the experiment's per-unit rollups unless they are current."""
        return self.rollups.ensure(key, self.query(self.experiment(key)).plan)

    # --- the analysis ------------------------------------------------------------------------
    def compute(
        self,
        key: str,
        method: str = "auto",
        sequential: bool = False,
        only: Sequence[str] | None = None,
    ) -> Computed:
        """The experiment's results. ``only`` restricts them to those metrics (the guardrail
        pass: its first metric stands in as primary; nothing of it is cached)."""
        if method not in METHODS:
            raise InvalidInputError(f"method must be one of {list(METHODS)}", field="method")
        started = time.perf_counter()
        info = self.experiment(key)
        query = self.query(info, only)
        if only is not None:
            names = [m.definition.name for m in query.planned]
            info = dataclasses.replace(
                info,
                primary=names[0],
                secondary=names[1:],
                guardrails={g: m for g, m in info.guardrails.items() if g in names},
            )
        stats, shadows = self.statistics(info, query)
        sql_seconds = time.perf_counter() - started
        if stats.total_units == 0:
            raise NoExposuresError(
                f"experiment {key!r} has no exposures yet; results need exposed units",
                field="key",
            )
        metrics = [p.definition for p in query.planned]
        lower = [m.name for m in metrics if m.lower_is_better]
        tuning_n = float(info.planned_sample_size or DEFAULT_TUNING_N)
        options: dict[str, Any] = {
            "control": info.control,
            "method": method,
            "alpha": info.alpha,
            "weights": info.analyzed_weights,
            "tuning_n": tuning_n,
            "guardrails": dict(info.guardrails),
            "lower_is_better": lower,
            **period_options(stats.period_counts, self.experiments.periods(key), info.weights),
            "inapplicable": "unadjusted",
        }
        min_sample = None
        if info.planned_sample_size and not sequential:
            min_sample = info.planned_sample_size // len(info.analyzed_variants)
        try:
            result = analyze_statistics(
                stats.metrics, stats.counts, sequential=sequential, min_sample=min_sample, **options
            )
            monitoring = (
                result
                if sequential
                else analyze_statistics(stats.metrics, stats.counts, sequential=True, **options)
            )
            fixed = (
                analyze_statistics(stats.metrics, stats.counts, sequential=False, **options)
                if sequential
                else result
            )
        except ValueError as exc:  # the experiment's definition, not the request: no field
            raise InvalidInputError(f"experiment {key!r} cannot be analyzed: {exc}") from None
        guardrails = guardrail_statuses(fixed, info.guardrails, set(lower), tuning_n)
        fallback = self.fallback(info)
        mostly = sorted(
            v
            for v, f in fallback.items()
            if v != info.control
            and f["predictions"] >= self.fallback_min_predictions
            and f["share"] is not None
            and f["share"] > self.fallback_share_threshold
        )
        now = datetime.now(UTC)
        body = result.to_dict()
        body["experiment"] = {
            "key": info.key,
            "status": info.status,
            "primary": info.primary,
            "auto_stop": info.auto_stop,
            "alpha": info.alpha,
            "mde": info.mde,
        }
        body["sample"] = {
            "units": stats.counts,
            "total_units": stats.total_units,
            "planned_sample_size": info.planned_sample_size,
            "first_exposure_at": _iso(stats.first_exposure_at),
            "last_exposure_at": _iso(stats.last_exposure_at),
            "power_so_far": power_so_far(fixed, info.primary, info.mde, info.alpha),
            "power_at_planned": power_at_planned(
                fixed,
                info.primary,
                info.mde,
                info.alpha,
                info.planned_sample_size,
                stats.total_units,
            ),
            **days_to_planned(
                stats.total_units, info.planned_sample_size, stats.first_exposure_at, now
            ),
        }
        body["shadows"] = shadows
        body["methods"] = method_report(result, method)
        body["excluded_values"] = {"limit": MAX_ABS_VALUE, **stats.excluded}
        body["fallback"] = {
            "variants": fallback,
            "threshold": self.fallback_share_threshold,
            "mostly_fell_back": mostly,
        }
        body["monitoring"] = {
            name: {
                v: {
                    "always_valid_p_value": json_number(c.comparison.p_value),
                    "cs_lower": json_number(c.comparison.ci_lower),
                    "cs_upper": json_number(c.comparison.ci_upper),
                }
                for v, c in m.comparisons.items()
            }
            for name, m in monitoring.metrics.items()
        }
        body["guardrails"] = [g.to_dict() for g in guardrails]
        body["flags"] = {
            "srm": result.srm.mismatch,
            "guardrail_violated": sorted({g.metric for g in guardrails if g.violated}),
            "treatment_fallback": mostly,
            "excluded_values": sum(stats.excluded.values()),
        }
        body["cupac_models"] = self.cupac.models_in_use(key)
        body["computed_at"] = now.isoformat()
        body["timings"] = {
            "sql_s": round(sql_seconds, 4),
            "total_s": round(time.perf_counter() - started, 4),
            "per_unit": stats.per_unit,
        }
        if stats.catch_up is not None:
            body["timings"]["rollup_catch_up_s"] = round(stats.catch_up.seconds, 4)
            body["timings"]["rollup_catch_up_units"] = stats.catch_up.units
        return Computed(body, result, monitoring, guardrails, info, fallback, mostly)


def method_report(result: AnalysisResult, requested: str) -> dict[str, Any]:
    """The method each metric used, and the metrics the requested one could not apply to with
    the reason (an explicit method falls back to unadjusted for those metrics only)."""
    not_applied = {}
    if requested not in ("auto", "none"):
        hints = {
            "cuped": "define covariates or pre_period_days for the metric (POST /metrics)",
            "regression": "define covariates or pre_period_days for the metric (POST /metrics)",
            "cupac": "fill predictions with POST /experiments/{key}/cupac",
        }
        for name, m in result.metrics.items():
            if m.method != requested:
                hint = hints[requested] if m.kind != "ratio" else "ratio metrics use none or auto"
                not_applied[name] = f"{m.reason}; {hint}"
    return {
        "requested": requested,
        "used": {name: m.method for name, m in result.metrics.items()},
        "not_applied": not_applied,
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from splitlab.analysis import AnalysisResult, analyze_statistics
from splitlab.analysis_results import json_number
from splitlab.stats.adjustment import METHODS
from splitlab.stats.sequential import DEFAULT_TUNING_N
from splitlab.web.errors import InvalidInputError, NotFoundError
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.repositories import (
    CupacRepository,
    ExperimentInfo,
    ExperimentRepository,
    MetricRepository,
)
from splitlab_analyzer.results.monitoring import (
    GuardrailStatus,
    days_to_planned,
    guardrail_statuses,
    power_so_far,
)
from splitlab_analyzer.results.sql import ExperimentStatistics, ResultsQuery
from splitlab_analyzer.rollups.store import (
    MAX_CATCH_UP_UNITS,
    CatchUp,
    RollupStore,
    built_digest,
    count_units,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Computed:
    """One computation: the JSON answer plus what guardrail automation and gauges need."""

    body: dict[str, Any]
    result: AnalysisResult
    monitoring: AnalysisResult
    guardrails: list[GuardrailStatus]
    experiment: ExperimentInfo


class ResultsService:
    def __init__(
        self,
        engine: Engine,
        experiments: ExperimentRepository,
        metrics: MetricRepository,
        cupac: CupacRepository,
    ) -> None:
        self.engine = engine
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

    def query(self, info: ExperimentInfo) -> ResultsQuery:
        metrics, found = self.definitions(info)
        return ResultsQuery(
            info.key,
            info.variants,
            metrics,
            found,
            cupac_metrics=self.cupac.metrics_with_predictions(info.key),
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

    def statistics(self, info: ExperimentInfo) -> ExperimentStatistics:
        """From the rollups (caught up first) when they hold the slots the metrics need, else
        from the events; one snapshot (REPEATABLE READ)."""
        query = self.query(info)
        caught = self.catch_up_rollups(info.key, query)
        with self.engine.connect().execution_options(
            isolation_level="REPEATABLE READ"
        ) as connection:
            rollups = caught is not None and built_digest(connection, info.key) == query.plan.digest
            units = 0 if rollups else count_units(connection, info.key)
            for statement in query.settings_sql(rollups, units):
                connection.execute(text(statement))
            sql = query.aggregate_sql(rollups)
            rows = connection.execute(text(sql), query.params).mappings().all()
        stats = query.read([dict(r) for r in rows])
        return dataclasses.replace(
            stats, per_unit="rollups" if rollups else "events", catch_up=caught
        )

    def build_rollups(self, key: str) -> bool:
        """Store (or rebuild) the experiment's per-unit rollups unless they are current."""
        return self.rollups.ensure(key, self.query(self.experiment(key)).plan)

    # --- the analysis ------------------------------------------------------------------------
    def compute(self, key: str, method: str = "auto", sequential: bool = False) -> Computed:
        if method not in METHODS:
            raise InvalidInputError(f"method must be one of {list(METHODS)}", field="method")
        started = time.perf_counter()
        info = self.experiment(key)
        stats = self.statistics(info)
        sql_seconds = time.perf_counter() - started
        if stats.total_units == 0:
            raise NotFoundError(
                f"experiment {key!r} has no exposures yet; results need exposed units",
                field="key",
            )
        metrics, _ = self.definitions(info)
        lower = [m.name for m in metrics if m.lower_is_better]
        tuning_n = float(info.planned_sample_size or DEFAULT_TUNING_N)
        options: dict[str, Any] = {
            "control": info.control,
            "method": method,
            "alpha": info.alpha,
            "weights": info.weights,
            "tuning_n": tuning_n,
            "guardrails": dict(info.guardrails),
            "lower_is_better": lower,
        }
        min_sample = None
        if info.planned_sample_size and not sequential:
            min_sample = info.planned_sample_size // len(info.variants)
        try:
            result = analyze_statistics(
                stats.metrics,
                stats.counts,
                sequential=sequential,
                min_sample=min_sample,
                **options,
            )
            monitoring = (
                result
                if sequential
                else analyze_statistics(stats.metrics, stats.counts, sequential=True, **options)
            )
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="method") from None
        fixed = (
            analyze_statistics(stats.metrics, stats.counts, sequential=False, **options)
            if sequential
            else result
        )
        guardrails = guardrail_statuses(fixed, info.guardrails, set(lower), tuning_n)
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
            **days_to_planned(
                stats.total_units, info.planned_sample_size, stats.first_exposure_at, now
            ),
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
        return Computed(body, result, monitoring, guardrails, info)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()

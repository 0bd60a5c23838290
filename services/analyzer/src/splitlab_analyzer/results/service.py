"""Results of one experiment: one snapshot of its inputs -> ``splitlab`` engine -> both horizons.

A computation reads everything once (:class:`ExperimentSnapshot`: the experiment, its metric
definitions with their ratio parts, its allocation periods, which metrics have CUPAC
predictions, ONE aggregate read of the results query, the fallback counts and the CUPAC
models in use), then analyzes the statistics once at both horizons
(:func:`splitlab.core.analysis.analyze.analyze_horizons`: fixed-horizon tests and always-valid
ones from the same candidate estimates). :class:`Results` holds the typed outcome the
automation works from (guardrail statuses, sample, fallback, both horizons) and the JSON answer
of each horizon.

The answer is ``splitlab.analyze``'s JSON shape (``AnalysisResult.to_dict()``) with the
analyzer's additions under their own keys: ``experiment``, ``sample`` (units per variant,
planned sample, enrolment rate, days to plan, power so far), ``monitoring`` (always-valid
p-values and confidence sequences of every comparison), ``guardrails`` (the one-sided
always-valid test of each guardrail), ``flags`` and ``computed_at``; the response schema is
:class:`splitlab_analyzer.schemas.ResultsBody`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from splitlab.contracts.values import MAX_ABS_VALUE
from splitlab.core.analysis.analyze import (
    AnalysisResult,
    Horizons,
    analyze_horizons,
)
from splitlab.core.analysis.monitoring import (
    GuardrailStatus,
    days_to_planned,
    guardrail_statuses,
    power_at_planned,
    power_so_far,
)
from splitlab.core.analysis.results import json_number
from splitlab.core.analysis.segments import (
    SegmentCorrection,
    SegmentSpec,
    SegmentStatistics,
    analyze_segments,
)
from splitlab.core.stats.adjustment import METHODS, Method
from splitlab.core.stats.sequential import DEFAULT_TUNING_N
from splitlab.platform.errors import InvalidInputError, NotFoundError
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.repository import (
    CupacRepository,
    ExperimentInfo,
    ExperimentRepository,
    MetricRepository,
    PeriodInfo,
)
from splitlab_analyzer.results.metric_tests import with_metric_tests
from splitlab_analyzer.results.periods import period_options
from splitlab_analyzer.results.repository import FallbackCount, ResultsRepository
from splitlab_analyzer.results.repository.query import ExperimentStatistics, ResultsQuery
from splitlab_analyzer.results.segments import cell_rows, split_statistics, unknown_attribute
from splitlab_analyzer.rollups.store import MAX_CATCH_UP_UNITS, CatchUp, RollupStore

logger = logging.getLogger(__name__)


class NoExposuresError(NotFoundError):
    """The experiment exists but none of its exposures is stored yet: nothing to analyse (404
    to a caller; the background passes count it as analysed, not as a failure)."""


@dataclass(frozen=True)
class ExperimentSnapshot:
    """Everything one results computation reads, each input read once."""

    experiment: ExperimentInfo
    """The experiment as analyzed (the guardrail pass: its first guardrail stands in as
    primary)."""
    registered: ExperimentInfo
    """The experiment as the registry holds it."""
    query: ResultsQuery
    """The results query (its metric definitions read once, with their ratio parts)."""
    periods: list[PeriodInfo]
    statistics: ExperimentStatistics
    """The analyzed variants' sufficient statistics, from the one aggregate read."""
    shadows: dict[str, dict[str, Any]]
    """Per shadow variant: its units and metric means (from the same read)."""
    fallback: Mapping[str, FallbackCount]
    """Per variant served through ``/predict``: predictions and fallbacks (empty without models)."""
    cupac_models: dict[str, dict[str, Any]]
    started: float
    """``time.perf_counter()`` when the computation started."""
    sql_seconds: float
    segments: list[SegmentStatistics] | None = None
    """Each segment's statistics (a computation by segment; from the same read)."""


@dataclass(frozen=True)
class Sample:
    """Units, plan and enrolment of an experiment (the body's ``sample``)."""

    units: dict[str, int]
    total_units: int
    planned_sample_size: int | None
    first_exposure_at: datetime | None
    last_exposure_at: datetime | None
    power_so_far: dict[str, float | None]
    power_at_planned: dict[str, float | None]
    units_per_day: float | None
    days_to_planned: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "units": dict(self.units),
            "total_units": self.total_units,
            "planned_sample_size": self.planned_sample_size,
            "first_exposure_at": _iso(self.first_exposure_at),
            "last_exposure_at": _iso(self.last_exposure_at),
            "power_so_far": dict(self.power_so_far),
            "power_at_planned": dict(self.power_at_planned),
            "units_per_day": self.units_per_day,
            "days_to_planned": self.days_to_planned,
        }


@dataclass(frozen=True)
class FallbackShare:
    predictions: int
    fallbacks: int
    share: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Results:
    """One computation at both horizons: typed fields for the automation, a body per horizon."""

    snapshot: ExperimentSnapshot
    method: Method
    horizons: Horizons
    guardrails: list[GuardrailStatus]
    sample: Sample
    fallback: dict[str, FallbackShare]
    mostly_fell_back: list[str]
    """Treatments whose fallback share is above the threshold."""
    bodies: dict[bool, dict[str, Any]]
    """The JSON answer of each horizon (key: ``sequential``)."""
    computed_at: datetime

    @property
    def experiment(self) -> ExperimentInfo:
        return self.snapshot.experiment

    @property
    def fixed(self) -> AnalysisResult:
        return self.horizons.fixed

    @property
    def monitoring(self) -> AnalysisResult:
        """The always-valid horizon (monitoring, gauges of always-valid p-values)."""
        return self.horizons.sequential

    @property
    def body(self) -> dict[str, Any]:
        """The fixed-horizon answer (the default of ``GET .../results``)."""
        return self.bodies[False]

    @property
    def excluded_values(self) -> int:
        return sum(self.snapshot.statistics.excluded.values())

    @property
    def violated(self) -> list[GuardrailStatus]:
        return [g for g in self.guardrails if g.violated]

    @property
    def srm_mismatch(self) -> bool:
        """The SRM flag: the always-valid test (valid at every refresh), not the chi-square,
        whose repeated reading raises false alarms."""
        return srm_mismatch(self.fixed)

    def srm_evidence(self) -> dict[str, Any]:
        """The SRM test and the periods' checks, as the body shows them."""
        return {"srm": self.body["srm"], "periods": self.body.get("periods")}


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
        self.fallback_share_threshold = fallback_share_threshold
        self.fallback_min_predictions = fallback_min_predictions
        self.experiments = experiments
        self.metrics = metrics
        self.cupac = cupac
        self.reads = ResultsRepository(engine)
        self.rollups = RollupStore(engine)

    # --- inputs ------------------------------------------------------------------------------
    def experiment(self, key: str) -> ExperimentInfo:
        info = self.experiments.get(key)
        if info is None:
            raise NotFoundError(f"no experiment with key {key!r}", field="key")
        return info

    def definitions(self, info: ExperimentInfo) -> tuple[list[MetricDef], dict[str, MetricDef]]:
        """The experiment's metric definitions (primary first) and every one they refer to
        (one read)."""
        found = self.metrics.with_parts(info.metric_names)
        missing = [n for n in info.metric_names if n not in found]
        missing += [
            p for n in info.metric_names if n in found for p in _parts(found[n]) if p not in found
        ]
        if missing:
            raise InvalidInputError(
                f"metrics {sorted(set(missing))} of experiment {info.key!r} have no definition; "
                "create them with POST /metrics or `splitlab metrics create`",
                field="metrics",
            )
        return [found[n] for n in info.metric_names], found

    def query(
        self,
        info: ExperimentInfo,
        only: Sequence[str] | None = None,
        segment: SegmentSpec | None = None,
    ) -> ResultsQuery:
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
            segment=segment,
        )

    def catch_up_rollups(self, key: str, query: ResultsQuery) -> CatchUp | None:
        """When the experiment's built rollups hold the slots ``query`` needs and the backlog
        is short (:data:`~splitlab_analyzer.rollups.store.MAX_CATCH_UP_UNITS`), bring them up
        to date and return what that took; else None (compute from the events)."""
        if self.rollups.digest(key) != query.plan.digest:
            return None
        started = time.perf_counter()
        backlog = self.rollups.backlog_units()
        if backlog == 0:
            return CatchUp(0, time.perf_counter() - started)
        if backlog > MAX_CATCH_UP_UNITS:
            return None
        return self.rollups.catch_up()

    def build_rollups(self, key: str) -> bool:
        """Store (or rebuild) the experiment's per-unit rollups unless they are current."""
        return self.rollups.ensure(key, self.query(self.experiment(key)).plan)

    def snapshot(
        self,
        info: ExperimentInfo,
        only: Sequence[str] | None = None,
        *,
        maintain: bool = False,
        segment: SegmentSpec | None = None,
    ) -> ExperimentSnapshot:
        """Read everything one computation needs, once. ``maintain`` (the refresh): first
        build the experiment's rollups if its plan is not stored, and catch every stored
        rollup up; else catch up only when this experiment's rollups are built and the
        backlog is short. ``only``: the guardrail pass (its first metric stands in as
        primary). ``segment``: the statistics per segment too (from the same one read)."""
        started = time.perf_counter()
        query = self.query(info, only, segment)
        periods = self.experiments.periods(info.key)
        if maintain:
            self.rollups.ensure(info.key, query.plan)
            caught: CatchUp | None = self.rollups.catch_up()
        else:
            caught = self.catch_up_rollups(info.key, query)
        read = self.reads.read(query, rollups_current=caught is not None)
        sql_seconds = time.perf_counter() - started
        segments = None
        if segment is None:
            stats = query.read(read.rows)
        else:
            if read.rows and all(r["seg"] is None for r in read.rows):
                known = self.reads.attribute_keys(info.key)
                if segment.attribute not in known:
                    raise unknown_attribute(segment, known, info.key)
            cells = cell_rows(segment, read.rows)
            stats, segments = split_statistics(query.read(cells.rows), cells.cells)
        stats = dataclasses.replace(
            stats,
            per_unit="rollups" if read.rollups else "events",
            catch_up=caught,
            excluded=read.excluded,
            unit_values=read.values,
        )
        registered = info
        if only is not None:
            names = [m.definition.name for m in query.planned]
            info = dataclasses.replace(
                info,
                primary=names[0],
                secondary=names[1:],
                guardrails={g: m for g, m in info.guardrails.items() if g in names},
            )
        if stats.total_units == 0:
            raise NoExposuresError(
                f"experiment {info.key!r} has no exposures yet; results need exposed units",
                field="key",
            )
        return ExperimentSnapshot(
            experiment=info,
            registered=registered,
            query=query,
            periods=periods,
            statistics=stats,
            shadows=query.shadow_summary(read.rows),
            fallback=self.reads.fallback_counts(info.key) if info.models else {},
            cupac_models=self.cupac.models_in_use(info.key),
            started=started,
            sql_seconds=sql_seconds,
            segments=segments,
        )

    # --- the analysis ------------------------------------------------------------------------
    def compute(
        self,
        key: str | ExperimentInfo,
        method: Method = "auto",
        *,
        only: Sequence[str] | None = None,
        maintain: bool = False,
        segment: SegmentSpec | None = None,
        segment_correction: SegmentCorrection = "holm",
    ) -> Results:
        """The experiment's results at both horizons from one snapshot (see
        :meth:`snapshot` for ``only`` and ``maintain``; nothing of the guardrail pass is
        cached); ``segment``: per segment too, adjusted across segments by
        ``segment_correction``."""
        if method not in METHODS:
            raise InvalidInputError(f"method must be one of {list(METHODS)}", field="method")
        info = self.experiment(key) if isinstance(key, str) else key
        snapshot = self.snapshot(info, only, maintain=maintain, segment=segment)
        return self.analyze(snapshot, method, segment_correction)

    def analyze(
        self,
        snapshot: ExperimentSnapshot,
        method: Method,
        segment_correction: SegmentCorrection = "holm",
    ) -> Results:
        info, stats = snapshot.experiment, snapshot.statistics
        metrics = [p.definition for p in snapshot.query.planned]
        lower = [m.name for m in metrics if m.lower_is_better]
        tuning_n = float(info.planned_sample_size or DEFAULT_TUNING_N)
        min_sample = None
        if info.planned_sample_size:
            min_sample = info.planned_sample_size // len(info.analyzed_variants)
        try:
            horizons = analyze_horizons(
                stats.metrics,
                stats.counts,
                control=info.control,
                method=method,
                alpha=info.alpha,
                weights=info.analyzed_weights,
                tuning_n=tuning_n,
                guardrails=dict(info.guardrails),
                lower_is_better=lower,
                min_sample=min_sample,
                inapplicable="unadjusted",
                **period_options(stats.period_counts, snapshot.periods, info.weights),
            )
        except ValueError as exc:  # the experiment's definition, not the request: no field
            raise InvalidInputError(f"experiment {info.key!r} cannot be analyzed: {exc}") from None
        horizons = with_metric_tests(horizons, stats, metrics)
        if snapshot.segments is not None:
            horizons = segmented(horizons, snapshot, tuning_n, segment_correction)
        fixed = horizons.fixed
        guardrails = guardrail_statuses(fixed, info.guardrails, set(lower), tuning_n)
        fallback = {}
        if info.models:
            for v in info.analyzed_variants:
                c = snapshot.fallback.get(v, FallbackCount(0, 0))
                share = c.fallbacks / c.predictions if c.predictions else None
                fallback[v] = FallbackShare(c.predictions, c.fallbacks, share)
        mostly = sorted(
            v
            for v, f in fallback.items()
            if v != info.control
            and f.predictions >= self.fallback_min_predictions
            and f.share is not None
            and f.share > self.fallback_share_threshold
        )
        now = datetime.now(UTC)
        pace = days_to_planned(
            stats.total_units, info.planned_sample_size, stats.first_exposure_at, now
        )
        sample = Sample(
            units=dict(stats.counts),
            total_units=stats.total_units,
            planned_sample_size=info.planned_sample_size,
            first_exposure_at=stats.first_exposure_at,
            last_exposure_at=stats.last_exposure_at,
            power_so_far=power_so_far(fixed, info.primary, info.mde, info.alpha),
            power_at_planned=power_at_planned(
                fixed,
                info.primary,
                info.mde,
                info.alpha,
                info.planned_sample_size,
                stats.total_units,
            ),
            units_per_day=pace["units_per_day"],
            days_to_planned=pace["days_to_planned"],
        )
        shared = {
            "experiment": {
                "key": info.key,
                "status": info.status,
                "primary": info.primary,
                "auto_stop": info.auto_stop,
                "alpha": info.alpha,
                "mde": info.mde,
            },
            "sample": sample.to_dict(),
            "shadows": snapshot.shadows,
            "excluded_values": {"limit": MAX_ABS_VALUE, **stats.excluded},
            "fallback": {
                "variants": {v: f.to_dict() for v, f in fallback.items()},
                "threshold": self.fallback_share_threshold,
                "mostly_fell_back": mostly,
            },
            "monitoring": {
                name: {
                    v: {
                        "always_valid_p_value": json_number(c.comparison.p_value),
                        "cs_lower": json_number(c.comparison.ci_lower),
                        "cs_upper": json_number(c.comparison.ci_upper),
                    }
                    for v, c in m.comparisons.items()
                }
                for name, m in horizons.sequential.metrics.items()
            },
            "guardrails": [g.to_dict() for g in guardrails],
            "flags": {
                "srm": srm_mismatch(fixed),
                "guardrail_violated": sorted({g.metric for g in guardrails if g.violated}),
                "treatment_fallback": mostly,
                "excluded_values": sum(stats.excluded.values()),
            },
            "cupac_models": snapshot.cupac_models,
            "computed_at": now.isoformat(),
        }
        timings: dict[str, Any] = {
            "sql_s": round(snapshot.sql_seconds, 4),
            "total_s": round(time.perf_counter() - snapshot.started, 4),
            "per_unit": stats.per_unit,
        }
        if stats.catch_up is not None:
            timings["rollup_catch_up_s"] = round(stats.catch_up.seconds, 4)
            timings["rollup_catch_up_units"] = stats.catch_up.units
        bodies = {}
        for sequential in (False, True):
            result = horizons.at(sequential)
            body = result.to_dict()
            body.update(shared)
            body["methods"] = method_report(result, method)
            body["timings"] = dict(timings)
            bodies[sequential] = body
        return Results(
            snapshot=snapshot,
            method=method,
            horizons=horizons,
            guardrails=guardrails,
            sample=sample,
            fallback=fallback,
            mostly_fell_back=mostly,
            bodies=bodies,
            computed_at=now,
        )


def segmented(
    horizons: Horizons,
    snapshot: ExperimentSnapshot,
    tuning_n: float,
    correction: SegmentCorrection = "holm",
) -> Horizons:
    """Both horizons with their results per segment (each segment with the overall method
    of each metric; ``correction`` across segments)."""
    assert snapshot.segments is not None
    assert snapshot.query.segment is not None
    info = snapshot.experiment
    options = period_options(snapshot.statistics.period_counts, snapshot.periods, info.weights)
    fixed, sequential = analyze_segments(
        snapshot.segments,
        horizons.fixed,
        snapshot.query.segment,
        weights=info.analyzed_weights,
        tuning_n=tuning_n,
        period_weights=options.get("period_weights"),
        correction=correction,
    )
    return Horizons(
        dataclasses.replace(horizons.fixed, segments=fixed),
        dataclasses.replace(horizons.sequential, segments=sequential),
    )


def srm_mismatch(result: AnalysisResult) -> bool:
    """Whether the always-valid SRM test of ``result`` flags a mismatch."""
    return result.srm_sequential is not None and result.srm_sequential.mismatch


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
                hint = (
                    hints[requested]
                    if m.kind != "ratio"
                    else "ratio metrics use none, auto or cuped (with covariates, or "
                    "pre_period_days on both parts)"
                )
                not_applied[name] = f"{m.reason}; {hint}"
    return {
        "requested": requested,
        "used": {name: m.method for name, m in result.metrics.items()},
        "not_applied": not_applied,
    }


def _parts(metric: MetricDef) -> list[str]:
    return [p for p in (metric.numerator, metric.denominator) if p]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()

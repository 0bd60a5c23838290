"""Prometheus gauges of experiment results (the analyzer web process exports them).

Labels are bounded by the registry: ``experiment`` (running and paused experiments),
``variant`` (their variants), ``metric`` (their metrics), ``pass`` (``full`` or
``guardrails``). A paused experiment keeps being exported (and refreshed) until a person
resumes or stops it, so an alert about it stays until then; label sets of an experiment that
is neither running nor paused are removed.

Whether an experiment is *evaluated* is exported apart from its results:
``splitlab_analyzer_refresh_failures_total{experiment,pass}`` (created at 0 when the experiment
is first seen, so the first failure is an increase) and
``splitlab_experiment_last_analysis_timestamp_seconds{experiment,pass}`` (the time the
analyzer first saw the experiment until the first success), so "not evaluated" never looks like
"no violation". Starting it at 0 made SplitLabAnalysisStale page on-call for every experiment a
scrape caught between its tracking and its first analysis (each start of the analyzer, each new
experiment); from the first sighting, stale means "no success within three intervals of it".

``splitlab_experiment_decision`` encodes the recommendation as a number: ``1`` ship,
``0`` keep running, ``-1`` roll back, ``2`` inconclusive.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from splitlab.core.analysis.analyze import AnalysisResult
from splitlab.core.analysis.monitoring import GuardrailStatus

DECISION_CODES = {"ship": 1, "keep_running": 0, "roll_back": -1, "inconclusive": 2}

UNITS = Gauge("splitlab_experiment_units", "Exposed units per variant.", ["experiment", "variant"])
EFFECT = Gauge(
    "splitlab_experiment_effect",
    "Effect (treatment - control) of the chosen method.",
    ["experiment", "metric", "variant"],
)
REL_EFFECT = Gauge(
    "splitlab_experiment_rel_effect",
    "Relative effect (treatment / control - 1).",
    ["experiment", "metric", "variant"],
)
CI_LOWER = Gauge(
    "splitlab_experiment_ci_lower",
    "Lower CI bound of the effect.",
    ["experiment", "metric", "variant"],
)
CI_UPPER = Gauge(
    "splitlab_experiment_ci_upper",
    "Upper CI bound of the effect.",
    ["experiment", "metric", "variant"],
)
P_VALUE = Gauge(
    "splitlab_experiment_p_value", "Fixed-horizon p-value.", ["experiment", "metric", "variant"]
)
AV_P_VALUE = Gauge(
    "splitlab_experiment_always_valid_p_value",
    "Always-valid (sequential) p-value.",
    ["experiment", "metric", "variant"],
)
VARIANCE_REDUCTION = Gauge(
    "splitlab_experiment_variance_reduction",
    "Variance reduction of the chosen method over no adjustment (0.3 = 30%).",
    ["experiment", "metric"],
)
SRM_P_VALUE = Gauge(
    "splitlab_experiment_srm_p_value", "Sample ratio mismatch chi-square p-value.", ["experiment"]
)
SRM_SEQUENTIAL_P_VALUE = Gauge(
    "splitlab_experiment_srm_sequential_p_value",
    "Always-valid sample ratio mismatch p-value (Dirichlet-multinomial mixture SPRT).",
    ["experiment"],
)
SRM_MISMATCH = Gauge(
    "splitlab_experiment_srm_mismatch",
    "1 when the always-valid SRM test detects a mismatch, else 0.",
    ["experiment"],
)
GUARDRAIL_VIOLATED = Gauge(
    "splitlab_experiment_guardrail_violated",
    "1 when the guardrail's one-sided always-valid test shows harm beyond its margin, else 0.",
    ["experiment", "metric", "variant"],
)
GUARDRAIL_P_VALUE = Gauge(
    "splitlab_experiment_guardrail_p_value",
    "Always-valid p-value of harm beyond the guardrail margin.",
    ["experiment", "metric", "variant"],
)
DECISION = Gauge(
    "splitlab_experiment_decision",
    "Recommendation: 1 ship, 0 keep running, -1 roll back, 2 inconclusive.",
    ["experiment", "variant"],
)

FALLBACK_SHARE = Gauge(
    "splitlab_experiment_fallback_share",
    "Share of the variant's predictions that control's model answered (fallback).",
    ["experiment", "variant"],
)
TREATMENT_FALLBACK = Gauge(
    "splitlab_experiment_treatment_fallback",
    "1 when the treatment's fallback share is above SPLITLAB_ANALYZER_FALLBACK_SHARE_THRESHOLD.",
    ["experiment", "variant"],
)
PAUSED_BY_ANALYZER = Gauge(
    "splitlab_experiment_paused_by_analyzer",
    "1 while the experiment stays paused by the analyzer's guardrail/SRM automation, until a "
    "person resumes, stops or changes it.",
    ["experiment"],
)
EXCLUDED_VALUES = Gauge(
    "splitlab_experiment_excluded_values",
    "Stored values beyond the value limit that the analysis leaves out.",
    ["experiment"],
)
REFRESH_FAILURES = Counter(
    "splitlab_analyzer_refresh_failures",
    "Failed background analyses of an experiment, by pass (full refresh or guardrail check).",
    ["experiment", "pass"],
)
LAST_ANALYSIS = Gauge(
    "splitlab_experiment_last_analysis_timestamp_seconds",
    "Unix time of the experiment's last successful analysis by pass (until the first: the time "
    "the analyzer first saw the experiment).",
    ["experiment", "pass"],
)
PASS_COMPLETED = Gauge(
    "splitlab_analyzer_pass_completed_timestamp_seconds",
    "Unix time the analyzer last completed a background pass (set to the start time at start).",
    ["pass"],
)
PASS_INTERVAL = Gauge(
    "splitlab_analyzer_pass_interval_seconds",
    "Configured seconds between background passes (only passes that are on): the alert rules "
    "call an analysis stale after three intervals.",
    ["pass"],
)
INFO = Gauge(
    "splitlab_experiment_info",
    "1 per exported experiment; its labels carry the owning team (the experiment's owner, "
    "which routes its alerts), its status and its primary metric.",
    ["experiment", "team", "status", "primary"],
)
CONTROL = Gauge(
    "splitlab_experiment_control",
    "1 for the experiment's control variant (the rules compare the other variants with it).",
    ["experiment", "variant"],
)
TARGET_POWER = Gauge(
    "splitlab_experiment_target_power", "The experiment's planned power.", ["experiment"]
)
PLANNED_UNITS = Gauge(
    "splitlab_experiment_planned_units",
    "The experiment's planned sample size (units in all variants; NaN without one).",
    ["experiment"],
)
POWER_AT_PLANNED = Gauge(
    "splitlab_experiment_power_at_planned",
    "Power the planned sample size will have for the primary metric's MDE, at the spread seen "
    "so far (NaN without a plan or an MDE).",
    ["experiment", "variant"],
)
STARTED = Gauge(
    "splitlab_experiment_started_timestamp_seconds",
    "Unix time the experiment started (NaN before).",
    ["experiment"],
)
DAYS_TO_PLANNED = Gauge(
    "splitlab_experiment_days_to_planned",
    "Days until the planned sample size at the enrolment rate so far (its planned end; NaN "
    "without a plan).",
    ["experiment"],
)
METHOD = Gauge(
    "splitlab_experiment_method",
    "1 for the method the analysis chose for the metric (none, cuped, cupac, ...).",
    ["experiment", "metric", "method"],
)
GUARDRAIL_MARGIN = Gauge(
    "splitlab_experiment_guardrail_margin",
    "The guardrail's tolerated relative harm (0.05 = 5% worse).",
    ["experiment", "metric", "variant"],
)
GUARDRAIL_HARM = Gauge(
    "splitlab_experiment_guardrail_harm",
    "Relative effect in the guardrail's harmful direction (compare with its margin).",
    ["experiment", "metric", "variant"],
)
ALERT_MIN_UNITS = Gauge(
    "splitlab_analyzer_alert_min_units",
    "Units an experiment needs before effect and SRM alerts fire "
    "(SPLITLAB_ANALYZER_ALERT_MIN_UNITS).",
)
PASSES = ("full", "guardrails")


@dataclass(frozen=True)
class Plan:
    """What the registry says of an experiment, exported beside its results."""

    team: str
    status: str
    primary: str
    control: str
    power: float
    planned_units: float | None
    power_at_planned: dict[str, float | None]
    started_at: float | None = None
    days_to_planned: float | None = None


_exported: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = defaultdict(set)
_tracked: dict[str, set[str]] = defaultdict(set)
"""Per experiment, the passes whose health series exist."""


def _set(key: str, gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    gauge.labels(*labels).set(float("nan") if value is None else value)
    _exported[key].add((gauge, labels))


def _set_info(key: str, plan: Plan) -> None:
    for gauge, labels in [e for e in _exported[key] if e[0] is INFO]:
        if labels != (key, plan.team, plan.status, plan.primary):
            gauge.remove(*labels)  # one info series per experiment, also between full passes
            _exported[key].discard((gauge, labels))
    _set(key, INFO, (key, plan.team, plan.status, plan.primary), 1.0)
    _set(key, CONTROL, (key, plan.control), 1.0)


def export(
    key: str,
    counts: dict[str, int],
    result: AnalysisResult,
    monitoring: AnalysisResult,
    guardrails: Iterable[GuardrailStatus],
    *,
    fallback: dict[str, float | None] | None = None,
    mostly_fell_back: Iterable[str] = (),
    paused_by_analyzer: bool = False,
    excluded: int = 0,
    plan: Plan | None = None,
) -> None:
    """Replace the experiment's gauges by this result's numbers."""
    before = set(_exported.pop(key, set()))
    if plan is not None:
        _set_info(key, plan)
        _set(key, TARGET_POWER, (key,), plan.power)
        _set(key, PLANNED_UNITS, (key,), plan.planned_units)
        _set(key, STARTED, (key,), plan.started_at)
        _set(key, DAYS_TO_PLANNED, (key,), plan.days_to_planned)
        for variant, power in plan.power_at_planned.items():
            _set(key, POWER_AT_PLANNED, (key, variant), power)
    mostly = set(mostly_fell_back)
    for variant, share in (fallback or {}).items():
        _set(key, FALLBACK_SHARE, (key, variant), share)
        _set(key, TREATMENT_FALLBACK, (key, variant), 1.0 if variant in mostly else 0.0)
    _set(key, PAUSED_BY_ANALYZER, (key,), 1.0 if paused_by_analyzer else 0.0)
    _set(key, EXCLUDED_VALUES, (key,), float(excluded))
    for variant, n in counts.items():
        _set(key, UNITS, (key, variant), n)
    for name, metric in result.metrics.items():
        _set(key, VARIANCE_REDUCTION, (key, name), metric.variance_reduction)
        _set(key, METHOD, (key, name, metric.method), 1.0)
        for variant, comp in metric.comparisons.items():
            c = comp.comparison
            labels = (key, name, variant)
            _set(key, EFFECT, labels, c.effect)
            _set(key, REL_EFFECT, labels, c.rel_effect)
            _set(key, CI_LOWER, labels, c.ci_lower)
            _set(key, CI_UPPER, labels, c.ci_upper)
            _set(key, P_VALUE, labels, c.p_value)
            av = monitoring.metrics[name].comparisons[variant].comparison.p_value
            _set(key, AV_P_VALUE, labels, av)
    _export_srm(key, result)
    for g in guardrails:
        guard = (key, g.metric, g.variant)
        _set(key, GUARDRAIL_VIOLATED, guard, 1.0 if g.violated else 0.0)
        _set(key, GUARDRAIL_P_VALUE, guard, g.always_valid_p_value)
        _set(key, GUARDRAIL_MARGIN, guard, g.margin)
        _set(key, GUARDRAIL_HARM, guard, g.harm)
    for variant, decision in result.decisions.items():
        _set(key, DECISION, (key, variant), DECISION_CODES[decision.action])
    for gauge, stale in before - _exported[key]:
        gauge.remove(*stale)


def _export_srm(key: str, result: AnalysisResult) -> None:
    """The chi-square p-value (dashboards), the always-valid one and the flag (the alert)."""
    _set(key, SRM_P_VALUE, (key,), result.srm.p_value)
    sequential = result.srm_sequential
    if sequential is not None:
        _set(key, SRM_SEQUENTIAL_P_VALUE, (key,), sequential.p_value)
    _set(key, SRM_MISMATCH, (key,), 1.0 if sequential is not None and sequential.mismatch else 0.0)


def export_guardrails(
    key: str,
    result: AnalysisResult,
    guardrails: Iterable[GuardrailStatus],
    paused_by_analyzer: bool,
    plan: Plan | None = None,
) -> None:
    """Update only what the guardrail pass computes: guardrails, SRM, the pause flag and the
    experiment's info (its team routes the alerts); the next full export replaces everything."""
    if plan is not None:
        _set_info(key, plan)
    _export_srm(key, result)
    _set(key, PAUSED_BY_ANALYZER, (key,), 1.0 if paused_by_analyzer else 0.0)
    for g in guardrails:
        guard = (key, g.metric, g.variant)
        _set(key, GUARDRAIL_VIOLATED, guard, 1.0 if g.violated else 0.0)
        _set(key, GUARDRAIL_P_VALUE, guard, g.always_valid_p_value)
        _set(key, GUARDRAIL_MARGIN, guard, g.margin)
        _set(key, GUARDRAIL_HARM, guard, g.harm)


def track(key: str, pass_: str) -> None:
    """Create the experiment's health series of ``pass_`` (failures at 0, last analysis at now:
    the staleness clock starts when the analyzer first sees it) unless they exist: the first
    failure is then an increase an alert can see."""
    if pass_ in _tracked[key]:
        return
    REFRESH_FAILURES.labels(key, pass_)
    LAST_ANALYSIS.labels(key, pass_).set(time.time())
    _tracked[key].add(pass_)


def analysed(key: str, pass_: str, at: float) -> None:
    track(key, pass_)
    LAST_ANALYSIS.labels(key, pass_).set(at)


def failed(key: str, pass_: str) -> None:
    track(key, pass_)
    REFRESH_FAILURES.labels(key, pass_).inc()


def pass_started(pass_: str, interval: float, at: float) -> None:
    """A background pass is on: export its interval; its completion time starts at ``at``."""
    PASS_INTERVAL.labels(pass_).set(interval)
    PASS_COMPLETED.labels(pass_).set(at)


def alert_min_units(units: int) -> None:
    ALERT_MIN_UNITS.set(units)


def pass_completed(pass_: str, at: float) -> None:
    PASS_COMPLETED.labels(pass_).set(at)


def forget(key: str) -> None:
    """Stop exporting an experiment (it is neither running nor paused)."""
    for gauge, labels in _exported.pop(key, set()):
        gauge.remove(*labels)
    for pass_ in _tracked.pop(key, set()):
        REFRESH_FAILURES.remove(key, pass_)
        LAST_ANALYSIS.remove(key, pass_)


def exported_experiments() -> set[str]:
    return set(_exported) | set(_tracked)


__all__ = [
    "DECISION_CODES",
    "PASSES",
    "Plan",
    "alert_min_units",
    "analysed",
    "export",
    "export_guardrails",
    "exported_experiments",
    "failed",
    "forget",
    "pass_completed",
    "pass_started",
    "track",
]

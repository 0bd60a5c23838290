"""Prometheus gauges of experiment results (the analyzer web process exports them).

Labels are bounded by the registry: ``experiment`` (running experiments), ``variant`` (their
variants), ``metric`` (their metrics). Label sets of an experiment that is no longer refreshed
are removed, so finished experiments stop being exported.

``splitlab_experiment_decision`` encodes the recommendation as a number: ``1`` ship,
``0`` keep running, ``-1`` roll back, ``2`` inconclusive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from prometheus_client import Gauge

from splitlab.analysis import AnalysisResult
from splitlab_analyzer.results.monitoring import GuardrailStatus

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
SRM_MISMATCH = Gauge(
    "splitlab_experiment_srm_mismatch", "1 when SRM is detected, else 0.", ["experiment"]
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

_exported: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = defaultdict(set)


def _set(key: str, gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    gauge.labels(*labels).set(float("nan") if value is None else value)
    _exported[key].add((gauge, labels))


def export(
    key: str,
    counts: dict[str, int],
    result: AnalysisResult,
    monitoring: AnalysisResult,
    guardrails: Iterable[GuardrailStatus],
) -> None:
    """Replace the experiment's gauges by this result's numbers."""
    before = set(_exported.pop(key, set()))
    for variant, n in counts.items():
        _set(key, UNITS, (key, variant), n)
    for name, metric in result.metrics.items():
        _set(key, VARIANCE_REDUCTION, (key, name), metric.variance_reduction)
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
    _set(key, SRM_P_VALUE, (key,), result.srm.p_value)
    _set(key, SRM_MISMATCH, (key,), 1.0 if result.srm.mismatch else 0.0)
    for g in guardrails:
        guard = (key, g.metric, g.variant)
        _set(key, GUARDRAIL_VIOLATED, guard, 1.0 if g.violated else 0.0)
        _set(key, GUARDRAIL_P_VALUE, guard, g.always_valid_p_value)
    for variant, decision in result.decisions.items():
        _set(key, DECISION, (key, variant), DECISION_CODES[decision.action])
    for gauge, stale in before - _exported[key]:
        gauge.remove(*stale)


def forget(key: str) -> None:
    """Stop exporting an experiment (it is no longer running)."""
    for gauge, labels in _exported.pop(key, set()):
        gauge.remove(*labels)


def exported_experiments() -> set[str]:
    return set(_exported)


__all__ = ["DECISION_CODES", "export", "exported_experiments", "forget"]

"""What the console's pages show, gathered from the assignment service (definitions, audit
trail), the results (cached, as ``GET /results``) and the results history.

Plain data for the templates; no HTML here except the SVG charts (``charts``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup

from splitlab.core.analysis.segments import SegmentCorrection, parse_segment
from splitlab.core.errors import ArgumentError
from splitlab.platform.errors import SplitLabError
from splitlab.reports.holdout import holdout_section
from splitlab.reports.segments import segments_html
from splitlab_analyzer.assignment_client import AssignmentClient
from splitlab_analyzer.console.charts import ForestRow, TimePoint, forest_svg, timeline_svg
from splitlab_analyzer.repository import MetricRepository
from splitlab_analyzer.results.history import Snapshot
from splitlab_analyzer.results.holdout import HoldoutService
from splitlab_analyzer.results.repository import HistoryRepository
from splitlab_analyzer.service.automation import Automation

ACTION_WORDS = {
    "ship": "ship it: the primary metric improved and no guardrail is harmed",
    "roll_back": "roll it back: the treatment is worse",
    "keep_running": "keep it running: not enough evidence yet",
    "inconclusive": "inconclusive: no effect detected at the planned sample",
}
CSV_COLUMNS = (
    "metric", "variant", "method", "variance_reduction", "n_control", "n_treatment",
    "mean_control", "mean_treatment", "effect", "ci_lower", "ci_upper", "rel_effect",
    "p_value", "always_valid_p_value", "cs_lower", "cs_upper", "cohens_d", "test",
    "test_effect", "test_ci_lower", "test_ci_upper", "test_p_value",
)  # fmt: skip
TEST_WORDS = {
    "z": ("a two-proportion z test", "Difference in proportions"),
    "chi2": ("a chi-square test of the 2x2 table", "Difference in proportions"),
    "mann_whitney": ("Mann-Whitney U with the Hodges-Lehmann shift", "Hodges-Lehmann shift"),
    "bootstrap_bca": ("a BCa bootstrap of the {quantile} quantile", "Difference of the quantile"),
    "bootstrap_percentile": (
        "a percentile bootstrap of the {quantile} quantile",
        "Difference of the quantile",
    ),
}
"""A named test (other than the default Welch) in words, and what its effect is."""


@dataclass(frozen=True)
class ListRow:
    key: str
    name: str
    status: str
    owner: str
    entity: str
    started_at: str | None
    units: int | None
    decision: str


@dataclass(frozen=True)
class Filters:
    status: str = ""
    owner: str = ""
    text: str = ""

    def keep(self, experiment: dict[str, Any]) -> bool:
        if self.status and experiment["status"] != self.status:
            return False
        if self.owner and self.owner.lower() not in (experiment.get("owner") or "").lower():
            return False
        if self.text:
            haystack = f"{experiment['key']} {experiment['name']}".lower()
            return self.text.lower() in haystack
        return True


def trained_model_text(model: dict[str, Any] | None) -> str | None:
    """``version 12 (in-experiment, boosting), trained 14 min ago``, flagged when stale."""
    if not model:
        return None
    age = float(model["age_seconds"])
    ago = f"{age / 3600:.1f} h" if age >= 3600 else f"{age / 60:.0f} min"
    text = f"version {model['model_id']} ({model['kind']}, {model['family']}), trained {ago} ago"
    if model.get("stale"):
        text += f"; older than its schedule allows (every {model['schedule_seconds']} s)"
    return text


@dataclass(frozen=True)
class MetricCard:
    name: str
    kind: str
    method: str
    requested_method: str
    variance_reduction: float | None
    cupac_model: str | None
    cupac_trained: str | None
    """The trainer's model in use (results' ``cupac_models``): version, kind, family, age."""
    role: str
    comparisons: dict[str, dict[str, Any]]
    monitoring: dict[str, dict[str, Any]]
    forest: str
    timelines: dict[str, str]
    history_points: dict[str, int]
    test: str
    """The metric definition's named test (``welch`` by default)."""
    test_words: str
    test_effect: str
    """What the named test's effect is (the column's heading)."""


@dataclass
class ExperimentPage:
    key: str
    config: dict[str, Any]
    audit: list[dict[str, Any]]
    results: dict[str, Any] | None
    results_error: str | None
    snapshots: list[Snapshot]
    cards: list[MetricCard] = field(default_factory=list)
    decisions: list[tuple[str, str, list[str]]] = field(default_factory=list)
    segment: str = ""
    """The ``segment`` asked for (``country``, ``tenure_days:0,30,180``), or empty."""
    segment_correction: str = "holm"
    segments: Markup = field(default_factory=Markup)
    """The results per segment, as in the HTML report (empty without a segment)."""
    segment_error: str | None = None


def decision_words(decisions: dict[str, Any]) -> str:
    if not decisions:
        return "-"
    return "; ".join(f"{v}: {d['action'].replace('_', ' ')}" for v, d in decisions.items())


@dataclass
class HoldoutPage:
    metrics: list[str]
    """The plain outcome metrics (what the holdout impact can read)."""
    metric: str
    days: int
    sequential: bool
    section: Markup = field(default_factory=Markup)
    """The impact's summary, curve and table per day, as in the HTML report."""
    error: str | None = None


class ConsolePages:
    def __init__(
        self,
        assignment: AssignmentClient,
        automation: Automation,
        history: HistoryRepository,
        holdout: HoldoutService,
        metrics: MetricRepository,
    ) -> None:
        self.assignment = assignment
        self.automation = automation
        self.history = history
        self.holdout = holdout
        self.metrics = metrics

    def holdout_page(self, metric: str, days: int, sequential: bool) -> HoldoutPage:
        """The global holdout against everyone else for ``metric`` (the first plain outcome
        metric when none is chosen); the analyzer's message in place of the curve when it
        cannot answer (no holdout configured, an unknown metric, days out of range)."""
        names = sorted(m.name for m in self.metrics.all() if m.source == "outcome")
        chosen = metric.strip() or (names[0] if names else "")
        page = HoldoutPage(names, chosen, days, sequential)
        if not chosen:
            page.error = "metric: no plain outcome metric is defined; define one with POST /metrics"
            return page
        try:
            page.section = holdout_section(self.holdout.impact(chosen, days, 0.05, sequential))
        except SplitLabError as exc:
            page.error = exc.message
        return page

    def experiments(self, filters: Filters) -> tuple[list[ListRow], list[str]]:
        """The filtered list (newest first) and every status present (for the filter)."""
        every = self.assignment.experiments()
        kept = [e for e in every if filters.keep(e)]
        latest = self.history.latest([e["key"] for e in kept])
        rows = []
        for e in kept:
            snap = latest.get(e["key"])
            cached = self.automation.cache.get(e["key"], "auto", False)
            units = sum(cached["sample"]["units"].values()) if cached else None
            decisions = cached["decisions"] if cached else None
            if snap is not None:
                units = units if units is not None else sum(snap.units.values())
                decisions = decisions if decisions is not None else snap.decisions
            rows.append(
                ListRow(
                    key=e["key"],
                    name=e["name"],
                    status=e["status"],
                    owner=e.get("owner") or "",
                    entity=e.get("hash_attribute") or "",
                    started_at=(e.get("started_at") or "")[:16].replace("T", " ") or None,
                    units=units,
                    decision=decision_words(decisions or {}),
                )
            )
        rows.sort(key=lambda r: (r.started_at or "", r.key), reverse=True)
        return rows, sorted({e["status"] for e in every})

    def experiment(
        self, key: str, segment: str = "", segment_correction: SegmentCorrection = "holm"
    ) -> ExperimentPage:
        config = self.assignment.experiment(key)
        audit = self.assignment.audit(key, limit=50)
        results: dict[str, Any] | None = None
        error = None
        try:
            results = self.automation.results_for(key, "auto", False)
        except SplitLabError as exc:
            error = exc.message
        page = ExperimentPage(key, config, audit, results, error, self.history.snapshots(key))
        page.segment, page.segment_correction = segment.strip(), segment_correction
        if page.segment and results is not None:
            try:
                spec = parse_segment(page.segment)
                by_segment = self.automation.results_for(
                    key, "auto", False, segment=spec, segment_correction=segment_correction
                )
                page.segments = segments_html(by_segment)
            except ArgumentError as exc:
                page.segment_error = exc.message
            except SplitLabError as exc:
                page.segment_error = exc.message
        if results is not None:
            page.cards = cards(results, config, page.snapshots)
            page.decisions = [
                (v, ACTION_WORDS.get(d["action"], d["action"]), list(d["reasons"]))
                for v, d in results["decisions"].items()
            ]
        return page


def roles(config: dict[str, Any]) -> dict[str, str]:
    metrics = config.get("metrics") or {}
    out = dict.fromkeys(metrics.get("secondary", []), "secondary")
    out.update({g["metric"]: "guardrail" for g in metrics.get("guardrails", [])})
    if metrics.get("primary"):
        out[metrics["primary"]] = "primary"
    return out


def cards(
    results: dict[str, Any], config: dict[str, Any], snapshots: list[Snapshot]
) -> list[MetricCard]:
    """One card per metric: the forest plot of its comparisons and, per treatment, the
    effect over time from the history."""
    alpha = float(results.get("alpha", 0.05))
    role_of = roles(config)
    out = []
    for name, metric in results["metrics"].items():
        comparisons = metric["comparisons"]
        rows = [
            ForestRow(
                label=variant,
                effect=c["effect"],
                ci_lower=c["ci_lower"],
                ci_upper=c["ci_upper"],
                significant=c["p_value"] is not None and c["p_value"] < alpha,
            )
            for variant, c in comparisons.items()
        ]
        timelines = {}
        counts = {}
        for variant in comparisons:
            points = time_points(snapshots, name, variant)
            counts[variant] = len(points)
            timelines[variant] = timeline_svg(points, f"{name}: {variant} - control over time")
        cupac = metric.get("cupac")
        test = str(metric.get("test", "welch"))
        words, effect = TEST_WORDS.get(test, (test, "Effect"))
        quantile = metric.get("quantile")
        out.append(
            MetricCard(
                name=name,
                kind=metric["kind"],
                method=metric["method"],
                requested_method=metric.get("requested_method", ""),
                variance_reduction=metric.get("variance_reduction"),
                cupac_model=cupac.get("model") if isinstance(cupac, dict) else None,
                cupac_trained=trained_model_text(results.get("cupac_models", {}).get(name)),
                role=role_of.get(name, "secondary"),
                comparisons=comparisons,
                monitoring=results.get("monitoring", {}).get(name, {}),
                forest=forest_svg(rows, f"{name}: effect and {1 - alpha:.0%} CI"),
                timelines=timelines,
                history_points=counts,
                test=test,
                test_words=words.format(quantile=quantile if quantile is not None else 0.5),
                test_effect=effect,
            )
        )
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    out.sort(key=lambda c: order.get(c.role, 1))
    return out


def time_points(snapshots: Iterable[Snapshot], metric: str, variant: str) -> list[TimePoint]:
    points = []
    for snap in snapshots:
        for row in snap.metrics:
            if row.metric == metric and row.variant == variant:
                points.append(TimePoint(snap.taken_at, row.effect, row.cs_lower, row.cs_upper))
    return points


def results_csv(results: dict[str, Any]) -> str:
    """A row per metric and treatment (the columns of ``CSV_COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for name, metric in results["metrics"].items():
        for variant, c in metric["comparisons"].items():
            seq = results.get("monitoring", {}).get(name, {}).get(variant, {})
            named = c.get("test") or {}
            values = {**c, **seq, "metric": name, "variant": variant, "method": metric["method"],
                      "variance_reduction": metric.get("variance_reduction"),
                      "test": metric.get("test", "welch"), "test_effect": named.get("effect"),
                      "test_ci_lower": named.get("ci_lower"),
                      "test_ci_upper": named.get("ci_upper"),
                      "test_p_value": named.get("p_value")}  # fmt: skip
            writer.writerow(["" if values.get(k) is None else values[k] for k in CSV_COLUMNS])
    return buffer.getvalue()


def short_time(value: str | datetime | None) -> str:
    if value is None:
        return "-"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text[:19].replace("T", " ")

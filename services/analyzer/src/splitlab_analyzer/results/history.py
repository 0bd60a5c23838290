"""Results history: a snapshot of an experiment's results at every scheduled snapshot pass
(``SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS``, hourly by default) and once more when it stops.

A snapshot keeps, per metric and treatment, what the results said at that moment: units and
means of both sides, the effect with its fixed-horizon CI and p-value, the always-valid
confidence sequence (``cs_lower``/``cs_upper``) and p-value, the method and its variance
reduction. ``snapshot_rows`` (pure) turns one computation's typed results into those rows;
``splitlab_analyzer.results.repository.HistoryRepository`` stores and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from splitlab.core.analysis.results import json_number

if TYPE_CHECKING:
    from splitlab.core.analysis.results import AnalysisResult
    from splitlab_analyzer.results.service import Results

REASONS = ("refresh", "stop")


@dataclass(frozen=True)
class SnapshotRow:
    metric: str
    variant: str
    method: str
    variance_reduction: float | None
    n_control: int
    n_treatment: int
    mean_control: float | None
    mean_treatment: float | None
    effect: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    cs_lower: float | None
    cs_upper: float | None
    always_valid_p_value: float | None


@dataclass(frozen=True)
class Snapshot:
    experiment_key: str
    taken_at: datetime
    reason: str
    computed_at: datetime
    units: dict[str, int]
    srm_p_value: float | None
    decisions: dict[str, dict[str, Any]]
    metrics: list[SnapshotRow]


def snapshot_rows(fixed: AnalysisResult, monitoring: AnalysisResult) -> list[SnapshotRow]:
    """Per metric and treatment of one computation, its numbers (as the results body shows
    them: non-finite numbers are None)."""
    rows = []
    for name, metric in fixed.metrics.items():
        for variant, comp in metric.comparisons.items():
            c = comp.comparison
            seq = monitoring.metrics[name].comparisons[variant].comparison
            rows.append(
                SnapshotRow(
                    metric=name,
                    variant=variant,
                    method=metric.method,
                    variance_reduction=json_number(metric.variance_reduction),
                    n_control=int(c.n_control),
                    n_treatment=int(c.n_treatment),
                    mean_control=json_number(c.mean_control),
                    mean_treatment=json_number(c.mean_treatment),
                    effect=json_number(c.effect),
                    ci_lower=json_number(c.ci_lower),
                    ci_upper=json_number(c.ci_upper),
                    p_value=json_number(c.p_value),
                    cs_lower=json_number(seq.ci_lower),
                    cs_upper=json_number(seq.ci_upper),
                    always_valid_p_value=json_number(seq.p_value),
                )
            )
    return rows


def snapshot_of(key: str, results: Results, reason: str, taken_at: datetime) -> Snapshot:
    """A snapshot of one computation's typed results (the fixed horizon and its monitoring)."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {list(REASONS)}, not {reason!r}")
    fixed = results.fixed
    return Snapshot(
        experiment_key=key,
        taken_at=taken_at,
        reason=reason,
        computed_at=results.computed_at,
        units={str(k): int(v) for k, v in results.sample.units.items()},
        srm_p_value=json_number(fixed.srm.p_value),
        decisions={
            str(v): {"action": d.action, "reasons": list(d.reasons)}
            for v, d in fixed.decisions.items()
        },
        metrics=snapshot_rows(fixed, results.monitoring),
    )

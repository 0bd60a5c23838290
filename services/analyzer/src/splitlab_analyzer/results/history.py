"""Results history: a snapshot of an experiment's results at every scheduled snapshot pass
(``SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS``, hourly by default) and once more when it stops.

A snapshot keeps, per metric and treatment, what the results said at that moment: units and
means of both sides, the effect with its fixed-horizon CI and p-value, the always-valid
confidence sequence (``cs_lower``/``cs_upper``) and p-value, the method and its variance
reduction. ``snapshot_rows`` (pure) turns a results body into those rows;
``splitlab_analyzer.results.repository.HistoryRepository`` stores and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def snapshot_rows(body: dict[str, Any]) -> list[SnapshotRow]:
    """Per metric and treatment of a results body (``GET /results``' shape), its numbers."""
    rows = []
    monitoring = body.get("monitoring", {})
    for name, metric in body["metrics"].items():
        for variant, c in metric["comparisons"].items():
            seq = monitoring.get(name, {}).get(variant, {})
            rows.append(
                SnapshotRow(
                    metric=name,
                    variant=variant,
                    method=metric["method"],
                    variance_reduction=metric.get("variance_reduction"),
                    n_control=int(c["n_control"]),
                    n_treatment=int(c["n_treatment"]),
                    mean_control=c["mean_control"],
                    mean_treatment=c["mean_treatment"],
                    effect=c["effect"],
                    ci_lower=c["ci_lower"],
                    ci_upper=c["ci_upper"],
                    p_value=c["p_value"],
                    cs_lower=seq.get("cs_lower"),
                    cs_upper=seq.get("cs_upper"),
                    always_valid_p_value=seq.get("always_valid_p_value"),
                )
            )
    return rows


def snapshot_of(key: str, body: dict[str, Any], reason: str, taken_at: datetime) -> Snapshot:
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {list(REASONS)}, not {reason!r}")
    return Snapshot(
        experiment_key=key,
        taken_at=taken_at,
        reason=reason,
        computed_at=datetime.fromisoformat(body["computed_at"]),
        units={str(k): int(v) for k, v in body["sample"]["units"].items()},
        srm_p_value=body["srm"]["p_value"],
        decisions={str(k): dict(v) for k, v in body["decisions"].items()},
        metrics=snapshot_rows(body),
    )

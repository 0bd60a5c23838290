"""Results history: a snapshot of an experiment's results at every scheduled snapshot pass
(``SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS``, hourly by default) and once more when it stops.

A snapshot keeps, per metric and treatment, what the results said at that moment: units and
means of both sides, the effect with its fixed-horizon CI and p-value, the always-valid
confidence sequence (``cs_lower``/``cs_upper``) and p-value, the method and its variance
reduction. ``snapshot_rows`` (pure) turns a results body into those rows;
``HistoryRepository`` stores and reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.storage.models import ResultsSnapshot, ResultsSnapshotMetric

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


class HistoryRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(self, key: str, body: dict[str, Any], reason: str) -> Snapshot:
        """Store a snapshot of ``body`` (one computed results body) taken now."""
        snapshot = snapshot_of(key, body, reason, datetime.now(UTC))
        with self.sessions.begin() as session:
            row = ResultsSnapshot(
                experiment_key=key,
                taken_at=snapshot.taken_at,
                reason=reason,
                computed_at=snapshot.computed_at,
                units=snapshot.units,
                srm_p_value=snapshot.srm_p_value,
                decisions=snapshot.decisions,
            )
            session.add(row)
            session.flush()
            session.add_all(
                ResultsSnapshotMetric(snapshot_id=row.id, **asdict(m)) for m in snapshot.metrics
            )
        return snapshot

    def latest(self, keys: list[str]) -> dict[str, Snapshot]:
        """The newest snapshot (without its metric rows) of each of these experiments."""
        if not keys:
            return {}
        with self.sessions() as session:
            heads = session.scalars(
                select(ResultsSnapshot)
                .where(ResultsSnapshot.experiment_key.in_(keys))
                .order_by(
                    ResultsSnapshot.experiment_key,
                    ResultsSnapshot.taken_at.desc(),
                    ResultsSnapshot.id.desc(),
                )
                .ext(distinct_on(ResultsSnapshot.experiment_key))
            ).all()
            return {
                h.experiment_key: Snapshot(
                    experiment_key=h.experiment_key,
                    taken_at=h.taken_at,
                    reason=h.reason,
                    computed_at=h.computed_at,
                    units={str(k): int(v) for k, v in h.units.items()},
                    srm_p_value=h.srm_p_value,
                    decisions=dict(h.decisions),
                    metrics=[],
                )
                for h in heads
            }

    def snapshots(self, key: str) -> list[Snapshot]:
        """The experiment's snapshots, oldest first."""
        with self.sessions() as session:
            heads = session.scalars(
                select(ResultsSnapshot)
                .where(ResultsSnapshot.experiment_key == key)
                .order_by(ResultsSnapshot.taken_at, ResultsSnapshot.id)
            ).all()
            ids = [h.id for h in heads]
            metrics: dict[int, list[SnapshotRow]] = {i: [] for i in ids}
            if ids:
                for m in session.scalars(
                    select(ResultsSnapshotMetric)
                    .where(ResultsSnapshotMetric.snapshot_id.in_(ids))
                    .order_by(ResultsSnapshotMetric.metric, ResultsSnapshotMetric.variant)
                ):
                    metrics[m.snapshot_id].append(
                        SnapshotRow(**{f: getattr(m, f) for f in SnapshotRow.__dataclass_fields__})
                    )
            return [
                Snapshot(
                    experiment_key=h.experiment_key,
                    taken_at=h.taken_at,
                    reason=h.reason,
                    computed_at=h.computed_at,
                    units={str(k): int(v) for k, v in h.units.items()},
                    srm_p_value=h.srm_p_value,
                    decisions=dict(h.decisions),
                    metrics=metrics[h.id],
                )
                for h in heads
            ]

    def stop_pending(self, stopped: list[str]) -> list[str]:
        """Of these stopped experiments, those with snapshots but none taken at stop."""
        if not stopped:
            return []
        with self.sessions() as session:
            rows = session.execute(
                select(ResultsSnapshot.experiment_key)
                .where(ResultsSnapshot.experiment_key.in_(stopped))
                .group_by(ResultsSnapshot.experiment_key)
                .having(func.count().filter(ResultsSnapshot.reason == "stop") == 0)
            )
            return sorted(r[0] for r in rows)

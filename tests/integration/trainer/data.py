"""Simulated units for the trainer's tests: a metric with nonlinear structure in a feature (so
gradient boosting beats a linear covariate), units exposed in the experiment, and history
units observed before it (for the pre-experiment model)."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert

from splitlab.contracts.events import ExposureEvent, OutcomeEvent
from splitlab.platform.storage.models import Experiment, MetricDefinition

T0 = datetime(2026, 3, 1, tzinfo=UTC)
"""The experiment's start; history is the week before it."""


def revenue(spend: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strongly nonlinear in ``spend``: a step and a wave (a linear fit explains little)."""
    return 30 + 25 * (spend > 3.0) + 10 * np.sin(3 * spend) + rng.normal(scale=3.0, size=spend.size)


@dataclass
class Scenario:
    key: str
    metric: str
    outcome_type: str
    feature: str
    variants: tuple[str, ...] = ("control", "treatment")
    exposures: list[ExposureEvent] = field(default_factory=list)
    outcomes: list[OutcomeEvent] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)

    def add_units(self, n: int, seed: int, start: datetime = T0, effect: float = 0.0) -> list[str]:
        """``n`` exposed units (first exposure in the 2 days after ``start``), each with its
        feature 2 days before exposure, one purchase after it and one in its pre-period."""
        rng = np.random.default_rng(seed)
        spend = np.exp(rng.normal(1.0, 0.5, n))
        value = revenue(spend, rng)
        made = []
        for i in range(n):
            unit = f"{self.key}-{seed}-u{i}"
            variant = self.variants[i % len(self.variants)]
            first = start + timedelta(minutes=float(rng.uniform(0, 60 * 48)))
            self.exposures.append(
                ExposureEvent(
                    unit_id=unit, experiment_key=self.key, variant=variant, bucket_version=0,
                    reason="hashed", occurred_at=first,
                )
            )  # fmt: skip
            lift = effect if variant != self.variants[0] else 0.0
            self.outcomes.append(self._purchase(unit, value[i] + lift, first + timedelta(hours=3)))
            self.outcomes.append(
                self._purchase(unit, float(rng.gamma(2, 10)), first - timedelta(days=3))
            )
            self.features.append(
                {"unit_id": unit, "name": self.feature, "value": float(spend[i]),
                 "observed_at": (first - timedelta(days=2)).isoformat()}
            )  # fmt: skip
            made.append(unit)
        self.units += made
        return made

    def add_history(self, n: int, seed: int, cutoff: datetime) -> None:
        """``n`` units before the experiment: feature before ``cutoff``, purchases after it
        (within the 7-day history window) from the same relation as experiment units."""
        rng = np.random.default_rng(seed)
        spend = np.exp(rng.normal(1.0, 0.5, n))
        value = revenue(spend, rng)
        for i in range(n):
            unit = f"{self.key}-h{seed}-u{i}"
            self.features.append(
                {"unit_id": unit, "name": self.feature, "value": float(spend[i]),
                 "observed_at": (cutoff - timedelta(days=1)).isoformat()}
            )  # fmt: skip
            at = cutoff + timedelta(hours=float(rng.uniform(1, 24 * 6)))
            self.outcomes.append(self._purchase(unit, float(value[i]), at))

    def _purchase(self, unit: str, value: float, at: datetime) -> OutcomeEvent:
        return OutcomeEvent(
            unit_id=unit, outcome_type=self.outcome_type, value=float(value), occurred_at=at
        )

    def metric_definition(self) -> dict[str, Any]:
        return {
            "name": self.metric, "source": "outcome", "outcome_type": self.outcome_type,
            "aggregation": "sum", "covariates": [self.feature],
        }  # fmt: skip

    def experiment_row(self, status: str = "running") -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "key": self.key, "name": self.key, "hypothesis": "", "owner": "", "status": status,
            "variants": [{"key": v, "weight": 1 / len(self.variants)} for v in self.variants],
            "coverage": 1.0, "hash_seed": None, "hash_version": 2, "hash_attribute": "id",
            "namespace": None, "targeting": None,
            "metrics": {"primary": self.metric, "secondary": [], "guardrails": []},
            "alpha": 0.05, "power": 0.8, "mde": 0.05, "planned_sample_size": None,
            "auto_stop": False, "bucket_version": 0, "min_bucket_version": 0, "version": 1,
            "created_at": now, "updated_at": now, "started_at": T0,
        }  # fmt: skip


def new_scenario() -> Scenario:
    tag = uuid.uuid4().hex[:8]
    return Scenario(
        key=f"trainer-{tag}", metric=f"rev_{tag}", outcome_type=f"purchase-{tag}",
        feature=f"spend_{tag}",
    )  # fmt: skip


def store_definitions(engine: Engine, scenario: Scenario) -> None:
    """The experiment (registry row) and its metric definition, written directly."""
    now = datetime.now(UTC)
    definition = scenario.metric_definition()
    with engine.begin() as connection:
        connection.execute(insert(Experiment).values(**scenario.experiment_row()))
        connection.execute(
            insert(MetricDefinition).values(
                **definition, description="", direction="higher_is_better",
                pre_period_days=14.0, created_at=now, updated_at=now,
            )
        )  # fmt: skip


def store_directly(engine: Engine, scenario: Scenario) -> None:
    """Events and features straight into Postgres (``COPY``), with the first exposures the
    consumer would keep: for tests about the trainer, not about ingestion."""
    first: dict[str, ExposureEvent] = {}
    for e in scenario.exposures:
        if e.unit_id not in first or e.occurred_at < first[e.unit_id].occurred_at:
            first[e.unit_id] = e
    tables = {
        "experiment_units (experiment_key, unit_id, variant, first_at, first_event_id)": [
            (e.experiment_key, e.unit_id, e.variant, e.occurred_at.isoformat(), str(e.event_id))
            for e in first.values()
        ],
        "outcomes (event_id, schema_version, occurred_at, unit_id, outcome_type, value)": [
            (
                str(o.event_id),
                "1",
                o.occurred_at.isoformat(),
                o.unit_id,
                o.outcome_type,
                repr(o.value),
            )
            for o in scenario.outcomes
        ],
        "unit_features (unit_id, name, observed_at, value)": [
            (f["unit_id"], f["name"], f["observed_at"], repr(f["value"])) for f in scenario.features
        ],
    }
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, rows in tables.items():
            buffer = io.StringIO("".join("\t".join(r) + "\n" for r in rows))
            cursor.copy_expert(f"COPY {table} FROM STDIN", buffer)
        raw.commit()
    finally:
        raw.close()

"""A simulated experiment: events (exposures, outcomes, predictions) and, computed apart from
the analyzer's SQL, the per-unit values those events mean under the metric definitions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from splitlab.contracts.events import ExposureEvent, OutcomeEvent, PredictionEvent

T0 = datetime(2026, 3, 1, tzinfo=UTC)
Event = ExposureEvent | OutcomeEvent | PredictionEvent

METRICS: list[dict[str, Any]] = [
    {"name": "revenue", "source": "outcome", "outcome_type": "purchase", "aggregation": "sum",
     "covariates": ["spend_30d"]},
    {"name": "clicks", "source": "outcome", "outcome_type": "click", "aggregation": "count"},
    {"name": "converted", "source": "outcome", "outcome_type": "purchase", "aggregation": "any",
     "pre_period_days": 0},
    {"name": "order_value", "source": "outcome", "outcome_type": "purchase",
     "aggregation": "mean"},
    {"name": "revenue_1d", "source": "outcome", "outcome_type": "purchase", "aggregation": "sum",
     "attribution_window_seconds": 86400.0},
    {"name": "latency", "source": "prediction_latency", "aggregation": "mean",
     "direction": "lower_is_better"},
    {"name": "revenue_per_click", "numerator": "revenue", "denominator": "clicks"},
]  # fmt: skip


@dataclass
class Simulation:
    events: list[Event]
    units: pd.DataFrame
    """One row per unit: variant, every metric, ``<metric>_pre`` and the feature ``spend_30d``."""
    features: list[dict[str, Any]]


def simulate(
    key: str,
    n: int = 1500,
    seed: int = 0,
    revenue_effect: float = 2.0,
    latency_effect: float = 0.0,
    variants: tuple[str, ...] = ("control", "t1", "t2"),
    weights: tuple[float, ...] = (0.5, 0.25, 0.25),
) -> Simulation:
    """True effect on revenue (``t1`` only), none on clicks; latency shifted by
    ``latency_effect`` (relative) in every treatment."""
    rng = np.random.default_rng(seed)
    prefix = uuid.uuid4().hex[:6]
    events: list[Event] = []
    rows = []
    features = []
    for i in range(n):
        unit = f"{prefix}-u{i}"
        variant = str(rng.choice(variants, p=weights))
        first = T0 + timedelta(minutes=float(rng.uniform(0, 60 * 24 * 5)))
        events.append(_exposure(unit, key, variant, first))
        if rng.random() < 0.3:  # a later exposure of the same unit: first one counts
            events.append(_exposure(unit, key, variant, first + timedelta(hours=5)))
        skill = rng.normal()
        spend = float(np.exp(1 + 0.5 * skill + rng.normal(scale=0.3)))
        if rng.random() < 0.9:  # some units have no feature value (imputed)
            features.append(
                {"unit_id": unit, "name": "spend_30d", "value": spend,
                 "observed_at": (first - timedelta(days=2)).isoformat()}
            )  # fmt: skip
            # A value observed after exposure must be ignored.
            features.append(
                {"unit_id": unit, "name": "spend_30d", "value": spend + 100,
                 "observed_at": (first + timedelta(hours=1)).isoformat()}
            )  # fmt: skip
        else:
            spend = np.nan
        rate = np.exp(0.3 * skill)
        values = {"revenue": 0.0, "clicks": 0.0, "revenue_1d": 0.0, "revenue_pre": 0.0,
                  "clicks_pre": 0.0, "revenue_1d_pre": 0.0, "order_value_pre": np.nan,
                  "latency_pre": np.nan}  # fmt: skip
        orders: list[float] = []
        pre_orders: list[float] = []
        for _ in range(rng.poisson(1.5 * rate)):  # pre-period purchases, inside 14 days
            value = float(rng.gamma(2, 5 * rate))
            at = first - timedelta(days=float(rng.uniform(0.01, 13.9)))
            events.append(_outcome(unit, "purchase", value, at))
            pre_orders.append(value)
        for _ in range(rng.poisson(0.5)):  # too early for the pre-period: ignored
            events.append(_outcome(unit, "purchase", 50.0, first - timedelta(days=20)))
        lift = revenue_effect if variant == "t1" else 0.0
        for _ in range(rng.poisson(1.5 * rate)):
            value = float(rng.gamma(2, 5 * rate)) + lift
            offset = timedelta(hours=float(rng.uniform(0, 72)))
            events.append(_outcome(unit, "purchase", value, first + offset))
            orders.append(value)
            if offset < timedelta(days=1):
                values["revenue_1d"] += value
        for _ in range(rng.poisson(3 * rate)):
            events.append(_outcome(unit, "click", 1.0, first + timedelta(hours=rng.uniform(0, 48))))
            values["clicks"] += 1
        for _ in range(rng.poisson(2 * rate)):
            events.append(_outcome(unit, "click", 1.0, first - timedelta(days=rng.uniform(0, 10))))
            values["clicks_pre"] += 1
        latencies = []
        for _ in range(rng.integers(0, 4)):
            base = float(rng.gamma(4, 10)) * (1 + (latency_effect if variant != "control" else 0))
            events.append(_prediction(unit, key, variant, base, first + timedelta(minutes=5)))
            latencies.append(base)
            # Shadow predictions never count.
            events.append(
                _prediction(unit, key, variant, 999.0, first + timedelta(minutes=6), shadow=True)
            )
        values["revenue"] = float(sum(orders))
        values["revenue_pre"] = float(sum(pre_orders))
        values["revenue_1d_pre"] = values["revenue_pre"]
        rows.append(
            {
                "unit_id": unit,
                "variant": variant,
                **values,
                "converted": float(len(orders) > 0),
                "order_value": float(np.mean(orders)) if orders else np.nan,
                "order_value_pre": float(np.mean(pre_orders)) if pre_orders else np.nan,
                "latency": float(np.mean(latencies)) if latencies else np.nan,
                "spend_30d": spend,
            }
        )
    frame = pd.DataFrame(rows).sort_values("unit_id").reset_index(drop=True)
    return Simulation(events, frame, features)


def _exposure(unit: str, key: str, variant: str, at: datetime) -> ExposureEvent:
    return ExposureEvent(
        unit_id=unit, experiment_key=key, variant=variant, bucket_version=0, reason="hashed",
        occurred_at=at,
    )  # fmt: skip


def _outcome(unit: str, kind: str, value: float, at: datetime) -> OutcomeEvent:
    return OutcomeEvent(unit_id=unit, outcome_type=kind, value=value, occurred_at=at)


def _prediction(
    unit: str, key: str, variant: str, latency: float, at: datetime, shadow: bool = False
) -> PredictionEvent:
    return PredictionEvent(
        unit_id=unit, experiment_key=key, variant=variant, bucket_version=0,
        request_id=uuid.uuid4().hex, model_name="ranker", model_version="3", shadow=shadow,
        latency_ms=latency, prediction=0.5, occurred_at=at,
    )  # fmt: skip


def experiment_row(
    key: str,
    variants: tuple[str, ...] = ("control", "t1", "t2"),
    weights: tuple[float, ...] = (0.5, 0.25, 0.25),
    *,
    guardrails: list[dict[str, Any]] | None = None,
    auto_stop: bool = False,
    status: str = "running",
) -> dict[str, Any]:
    """A row for the registry's table (what the assignment service would store)."""
    now = datetime.now(UTC)
    return {
        "key": key, "name": key, "hypothesis": "", "owner": "", "status": status,
        "variants": [{"key": v, "weight": w} for v, w in zip(variants, weights, strict=True)],
        "coverage": 1.0, "hash_seed": None, "hash_version": 2, "hash_attribute": "id",
        "namespace": None, "targeting": None,
        "metrics": {
            "primary": "revenue",
            "secondary": ["clicks", "converted", "order_value", "revenue_1d",
                          "revenue_per_click"],
            "guardrails": guardrails if guardrails is not None
            else [{"metric": "latency", "margin": 0.05}],
        },
        "alpha": 0.05, "power": 0.8, "mde": 0.05, "planned_sample_size": 4000,
        "auto_stop": auto_stop, "bucket_version": 0, "min_bucket_version": 0, "version": 1,
        "created_at": now, "updated_at": now, "started_at": now,
    }  # fmt: skip

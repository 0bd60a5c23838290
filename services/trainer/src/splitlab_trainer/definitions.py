"""The trainer's view of a metric definition (plain data, read from ``metric_definitions``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    source: str
    """``outcome``, ``prediction_latency`` or ``prediction_error``."""
    outcome_type: str | None
    aggregation: str
    """``sum``, ``count``, ``any`` or ``mean``."""
    attribution_window_seconds: float | None
    pre_period_days: float
    covariates: tuple[str, ...]

    @property
    def pre_covariate(self) -> str:
        return f"{self.name}_pre"

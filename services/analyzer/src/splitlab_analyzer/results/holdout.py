"""Holdout impact in the analyzer: ``GET /holdout/impact?metric=...`` (the global holdout
against everyone else, day by day; :mod:`splitlab.core.analysis.holdout`).

Who is held out is the assignment service's hash of the unit id
(``splitlab.core.assignment.decision.in_holdout`` with ``SPLITLAB_HOLDOUT_SHARE`` and
``SPLITLAB_HOLDOUT_SEED``): held-out units publish no exposure, so the analyzer recognises them
by the same hash, in Python (FNV-1a of the id is not something Postgres computes; that step is
why this statistic is not pushed down to SQL beyond the per-unit-day sums). The population is
every unit with an outcome of any type or a served (non-shadow) prediction in the window, seen
the same way in both groups; each (unit, day) row carries the metric's sum and number of events
that day (0 on a day with other outcomes or predictions only). Only plain metrics of
``source: outcome`` apply (predictions and ratios: 422).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from splitlab.core.analysis.holdout import MAX_DAYS, Aggregation, holdout_impact
from splitlab.core.assignment.decision import HoldoutConfig, in_holdout
from splitlab.platform.errors import ConflictError, InvalidInputError, NotFoundError
from splitlab_analyzer.repository import MetricRepository
from splitlab_analyzer.results.repository.holdout import HoldoutRepository


class HoldoutDayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: str
    n_holdout: int
    n_exposed: int = Field(description="Units outside the holdout (they get every launch).")
    mean_holdout: float | None
    mean_exposed: float | None
    effect: float | None = Field(description="mean_exposed - mean_holdout.")
    ci_lower: float | None
    ci_upper: float | None
    rel_effect: float | None
    rel_ci_lower: float | None
    rel_ci_upper: float | None
    p_value: float | None
    status: str


class HoldoutImpactBody(BaseModel):
    """The cumulative effect of all launched changes on one metric, per day."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    aggregation: str = Field(description="How a unit's events add up to its value: sum, any, mean.")
    alpha: float
    sequential: bool = Field(description="True: always-valid intervals and p-values.")
    control: str = Field(description="Always 'holdout': the effect is the rest minus it.")
    holdout_share: float
    since: str
    until: str
    days: list[HoldoutDayBody]
    latest: HoldoutDayBody | None


AGGREGATIONS: dict[str, Aggregation] = {"sum": "sum", "count": "sum", "any": "any", "mean": "mean"}


class HoldoutService:
    def __init__(
        self,
        repository: HoldoutRepository,
        metrics: MetricRepository,
        holdout: HoldoutConfig,
    ) -> None:
        self._repository = repository
        self._metrics = metrics
        self._holdout = holdout

    def impact(
        self,
        metric: str,
        days: int = 28,
        alpha: float = 0.05,
        sequential: bool = False,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        if self._holdout.share <= 0:
            raise ConflictError(
                "holdout_share: no global holdout is configured (SPLITLAB_HOLDOUT_SHARE is 0); "
                "set it on the assignment service and the analyzer, e.g. 0.05",
                field="holdout_share",
            )
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInputError(
                f"days: must be between 1 and {MAX_DAYS}; got {days}", field="days"
            )
        if not 0 < alpha < 1:
            raise InvalidInputError(
                f"alpha: must be in (0, 1), e.g. 0.05; got {alpha}", field="alpha"
            )
        definition = self._metrics.get(metric)
        if definition is None:
            raise NotFoundError(
                f"metric: no metric named {metric!r}; define it with POST /metrics", field="metric"
            )
        if definition.source != "outcome" or definition.outcome_type is None:
            raise InvalidInputError(
                f"metric: {metric!r} is not a plain outcome metric (source "
                f"{definition.source or 'ratio'}); the holdout impact needs outcomes, which "
                "held-out units post like everyone else",
                field="metric",
            )
        assert definition.aggregation is not None
        until = now or datetime.now(UTC)
        since = (until - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        rows = self._repository.unit_days(definition.outcome_type, since, until)
        aggregation = AGGREGATIONS[definition.aggregation]
        values = rows.events if definition.aggregation in ("count", "any") else rows.value
        flags = {u: in_holdout(u, self._holdout) for u in set(rows.unit)}
        result = holdout_impact(
            np.asarray(rows.unit, dtype=object),
            np.asarray(rows.day, dtype=object),
            np.asarray(values, dtype=np.float64),
            np.fromiter((flags[u] for u in rows.unit), dtype=bool, count=len(rows.unit)),
            count=np.asarray(rows.events, dtype=np.float64),
            aggregation=aggregation,
            alpha=alpha,
            sequential=sequential,
            metric=metric,
        )
        return {
            **result.to_dict(),
            "holdout_share": self._holdout.share,
            "since": since.isoformat(),
            "until": until.isoformat(),
        }

"""Metric definitions: ``POST /metrics`` (admin) creates; ``GET /metric-definitions`` (read)
lists.

``GET /metrics`` stays Prometheus' scrape endpoint, hence the separate read path.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from splitlab.web.errors import ConflictError, InvalidInputError, NotFoundError
from splitlab_analyzer.deps import AdminOnly, Metrics, Reader
from splitlab_analyzer.schemas import MetricCreate, MetricList, MetricRead

router = APIRouter(tags=["metrics"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No admin key sent, or none configured."},
    403: {"description": "Wrong admin key."},
    409: {"description": "A metric with this name exists."},
    422: {"description": "Invalid field; `error.field` names it."},
}


@router.post(
    "/metrics", status_code=status.HTTP_201_CREATED, responses=ERRORS, dependencies=[AdminOnly]
)
def create_metric(body: MetricCreate, metrics: Metrics) -> MetricRead:
    """Define a metric (plain: source + aggregation; ratio: numerator + denominator)."""
    definition = body.to_def()
    if definition.is_ratio:
        parts = metrics.many([str(body.numerator), str(body.denominator)])
        for field in ("numerator", "denominator"):
            part = parts.get(str(getattr(body, field)))
            if part is None:
                raise InvalidInputError(
                    f"{field}: no metric named {getattr(body, field)!r}; define it first",
                    field=field,
                )
            if part.is_ratio:
                raise InvalidInputError(
                    f"{field}: must be a plain metric, not a ratio", field=field
                )
    if not metrics.create(definition):
        raise ConflictError(f"a metric named {body.name!r} exists", field="name")
    return MetricRead.of(definition)


@router.get("/metric-definitions", dependencies=[Reader])
def list_metrics(metrics: Metrics) -> MetricList:
    return MetricList(metrics=[MetricRead.of(m) for m in metrics.all()])


@router.get(
    "/metric-definitions/{name}",
    responses={404: {"description": "No such metric."}},
    dependencies=[Reader],
)
def get_metric(name: str, metrics: Metrics) -> MetricRead:
    found = metrics.get(name)
    if found is None:
        raise NotFoundError(f"no metric named {name!r}", field="name")
    return MetricRead.of(found)

"""Metric definitions: ``POST /metrics`` (admin) creates; ``GET /metric-definitions`` (read)
lists; ``PATCH /metric-definitions/{name}`` and ``POST /metric-definitions/{name}/deprecate``
(admin) change one.

``GET /metrics`` stays Prometheus' scrape endpoint, hence the separate path of the resource.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from splitlab.platform.errors import NotFoundError
from splitlab_analyzer import metric_service
from splitlab_analyzer.deps import AdminOnly, Metrics, Reader
from splitlab_analyzer.schemas import (
    MetricCreate,
    MetricDeprecate,
    MetricList,
    MetricRead,
    MetricUpdate,
)

router = APIRouter(tags=["metrics"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No admin key sent, or none configured."},
    403: {"description": "Wrong admin key."},
    409: {"description": "A metric with this name exists."},
    422: {"description": "Invalid field; `error.field` names it."},
}

CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status_code: v for status_code, v in ERRORS.items() if status_code != 409},
    404: {"description": "No such metric."},
}


@router.post(
    "/metrics", status_code=status.HTTP_201_CREATED, responses=ERRORS, dependencies=[AdminOnly]
)
def create_metric(body: MetricCreate, metrics: Metrics) -> MetricRead:
    """Define a metric (plain: source + aggregation; ratio: numerator + denominator)."""
    return MetricRead.of(metric_service.create(metrics, body.to_def()))


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


@router.patch(
    "/metric-definitions/{name}",
    responses=CHANGE_ERRORS,
    dependencies=[AdminOnly],
)
def update_metric(name: str, body: MetricUpdate, metrics: Metrics) -> MetricRead:
    """Change a definition's fields (not its name). Results use it from their next
    computation: at the next refresh, or once the cached results expire."""
    return MetricRead.of(metric_service.update(metrics, name, body))


@router.post(
    "/metric-definitions/{name}/deprecate",
    responses=CHANGE_ERRORS,
    dependencies=[AdminOnly],
)
def deprecate_metric(name: str, body: MetricDeprecate, metrics: Metrics) -> MetricRead:
    """Deprecate a metric: experiments that use it keep their results; new ratio metrics may
    not use it. A second call keeps the first time and reason."""
    return MetricRead.of(metric_service.deprecate(metrics, name, body.reason))

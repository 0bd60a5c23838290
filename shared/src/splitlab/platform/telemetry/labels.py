"""Children of labelled Prometheus metrics, looked up once per label set.

``metric.labels(...)`` validates its arguments and takes a lock on every call (a few
microseconds); on ``/assign`` and ``/predict`` it ran several times per request. ``Children``
keeps each child it has made in a dict. Only for bounded label sets (experiments, variants,
reasons, routes), and never for metrics whose label sets are ``remove()``d.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client.metrics import MetricWrapperBase

__all__ = ["Children"]

M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        """The child for ``values``, in the metric's label order (as ``metric.labels``)."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child

"""Prometheus metrics every HTTP service exports (service-specific ones live with the service).

Label sets are bounded: ``route`` is the route template (``/experiments/{key}``), never the raw
path, and unmatched paths share the label ``unmatched``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "splitlab_http_requests",
    "HTTP requests answered, by service, method, route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "splitlab_http_request_duration_seconds",
    "Time from the first byte of a request to the end of its response.",
    ["service", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_REJECTED_BODIES = Counter(
    "splitlab_http_rejected_bodies",
    "Requests refused with 413 because their body exceeded SPLITLAB_MAX_BODY_BYTES.",
    ["service"],
)
DEPENDENCY_UP = Gauge(
    "splitlab_dependency_up",
    "1 when the service's last check of a dependency succeeded, else 0.",
    ["service", "dependency"],
)

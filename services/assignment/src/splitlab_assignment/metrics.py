"""Prometheus metrics of the assignment service's own endpoints (the shared HTTP ones are in
``splitlab.web``; the assignment runtime's in ``splitlab.assigning.telemetry``)."""

from __future__ import annotations

from prometheus_client import Histogram

ASSIGN_LATENCY = Histogram(
    "splitlab_assign_duration_seconds",
    "Time to decide an /assign or /assign/batch answer (parsing and serialization excluded).",
    ["endpoint"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

"""Prometheus metrics of the assignment service (the shared HTTP ones are in splitlab.web).

Label sets are bounded: experiments and their variants are admin-created, reasons an enum.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ASSIGNMENTS = Counter(
    "splitlab_assignments",
    "Assignments answered, by experiment, variant and reason.",
    ["experiment", "variant", "reason"],
)
ASSIGN_LATENCY = Histogram(
    "splitlab_assign_duration_seconds",
    "Time to decide an /assign or /assign/batch answer (parsing and serialization excluded).",
    ["endpoint"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
REDIS_FALLBACKS = Counter(
    "splitlab_assignment_redis_fallbacks",
    "Sticky-store operations answered without Redis: failed (read/write) or skipped while the "
    "circuit breaker is open.",
    ["operation"],
)
EXPERIMENTS_CACHED = Gauge(
    "splitlab_experiments_cached", "Experiments in this replica's cache, by status.", ["status"]
)
CACHE_REFRESH_FAILURES = Counter(
    "splitlab_experiment_cache_refresh_failures",
    "Periodic experiment-cache refreshes that failed (the cache keeps its last state).",
)

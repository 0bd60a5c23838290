"""Prometheus metrics of the assignment runtime, exported by every process that assigns
(the assignment service and the router).

Label sets are bounded: experiments and their variants are admin-created, reasons an enum.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ASSIGNMENTS = Counter(
    "splitlab_assignments",
    "Assignments answered, by experiment, variant and reason.",
    ["experiment", "variant", "reason"],
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

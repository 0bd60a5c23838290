"""The assignment runtime both the assignment service (``/assign``) and the router
(``/predict``) run: one implementation, so a unit gets the same variant from either.

- ``definitions``: stored experiment state -> the pure core's ``ExperimentDefinition``;
- ``cache``: the in-memory experiment cache (no database on the hot path);
- ``loading``: refreshing that cache from Postgres (only experiments whose version changed);
- ``sticky``: the Redis sticky store (one round trip, circuit breaker);
- ``service``: ``AssignmentService``, the decision + sticky read/write + exposure event;
- ``telemetry``: the Prometheus metrics of the above.

The decision itself is pure and lives in ``splitlab.core.assignment``. See ``docs/router.md`` for
why the router shares this code instead of calling the assignment service.
"""

"""Telemetry: structured logs with the request id (``logs``) and Prometheus helpers (``labels``).

"telemetry" is what the platform reports about itself (logs, Prometheus series); "metrics" means
an experiment's metrics only (``POST /metrics``, ``splitlab metrics``)."""

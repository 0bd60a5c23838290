"""The catalogue's Prometheus figures (:mod:`splitlab_trainer.telemetry`) in one query per
scrape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, text

CATALOGUE_METRICS = """
SELECT 'status' AS part, status AS a, NULL AS b, NULL AS c, count(*)::float8 AS value
FROM trained_models GROUP BY status
UNION ALL
SELECT 'duration', experiment_key, metric, kind, duration_seconds FROM (
  SELECT DISTINCT ON (experiment_key, metric, kind) experiment_key, metric, kind,
         duration_seconds
  FROM trained_models WHERE status = 'done' AND duration_seconds IS NOT NULL
  ORDER BY experiment_key, metric, kind, id DESC) d
UNION ALL
SELECT 'age', m.experiment_key, m.metric, m.kind,
       extract(epoch FROM now() - m.trained_at)::float8
FROM trained_models m WHERE m.in_use
UNION ALL
SELECT 'schedule', m.experiment_key, m.metric, m.kind, m.schedule_seconds::float8
FROM trained_models m WHERE m.in_use AND m.schedule_seconds IS NOT NULL
UNION ALL
SELECT 'failing', experiment_key, metric, kind,
       count(*) FILTER (WHERE status = 'failed' AND id > coalesce(last_done, 0))::float8
FROM (SELECT experiment_key, metric, kind, status, id,
             max(id) FILTER (WHERE status = 'done')
               OVER (PARTITION BY experiment_key, metric, kind) AS last_done
      FROM trained_models WHERE status IN ('done', 'failed')) f
GROUP BY experiment_key, metric, kind
UNION ALL
SELECT 'stale', m.experiment_key, m.metric, NULL,
       (extract(epoch FROM now() - m.trained_at) > :factor * m.schedule_seconds)::int::float8
FROM trained_models m JOIN experiments e ON e.key = m.experiment_key
WHERE m.in_use AND e.status = 'running'
"""


def catalogue_metrics(
    connection: Connection, factor: float
) -> list[Row[str, Any, Any, Any, float]]:
    """``part, a, b, c, value`` rows of :data:`CATALOGUE_METRICS` (``factor``: the stale
    factor)."""
    return list(connection.execute(text(CATALOGUE_METRICS), {"factor": factor}).all())

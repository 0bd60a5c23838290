"""Prometheus metrics of the trainings, read from the catalogue at scrape time.

Trainings run in the worker's prefork children, which come and go (one task each); counters
kept in their memory would vanish with them and need a multiprocess registry. The catalogue in
Postgres already holds every training's status, duration and time, so the trainer API (scraped
by Prometheus: ``infra/stack.sh`` SCRAPE_TARGETS, ``trainer=8004``) exports them from there with
one query per scrape, the same numbers whichever worker trained:

- ``splitlab_trainer_trainings{status}``: catalogue rows per status (queued, running, done,
  failed; done and failed only grow);
- ``splitlab_trainer_training_duration_seconds{experiment,metric,kind}``: the newest done
  training's duration;
- ``splitlab_trainer_model_age_seconds{experiment,metric,kind}``: age of the version in use;
- ``splitlab_trainer_model_schedule_seconds{experiment,metric,kind}``: the schedule that applied
  to the version in use (how often its kind is meant to be retrained);
- ``splitlab_trainer_model_stale{experiment,metric}``: 1 when the version in use is older than
  twice its schedule while the experiment runs (see :func:`stale`);
- ``splitlab_trainer_failures_in_a_row{experiment,metric,kind}``: failed trainings of the pair
  since its newest done one (0 once one succeeds), for every pair with a finished training.

The alert rules ``SplitLabCupacModelStale`` and ``SplitLabTrainingsFailing``
(``infra/prometheus/rules/training.rules.yml``) read the last two.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

logger = logging.getLogger(__name__)

STALE_FACTOR = 2.0
"""A version in use older than this many schedule periods is stale (one missed run allowed)."""

QUERY = """
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


def stale(age_seconds: float, schedule_seconds: float, running: bool) -> bool:
    """A running experiment's model version is stale past ``STALE_FACTOR`` schedule periods."""
    return running and age_seconds > STALE_FACTOR * schedule_seconds


class CatalogueCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        trainings = GaugeMetricFamily(
            "splitlab_trainer_trainings",
            "Trainings in the catalogue per status.",
            labels=["status"],
        )
        duration = GaugeMetricFamily(
            "splitlab_trainer_training_duration_seconds",
            "Duration of the newest done training.",
            labels=["experiment", "metric", "kind"],
        )
        age = GaugeMetricFamily(
            "splitlab_trainer_model_age_seconds",
            "Age of the model version in use.",
            labels=["experiment", "metric", "kind"],
        )
        schedule = GaugeMetricFamily(
            "splitlab_trainer_model_schedule_seconds",
            "Seconds between trainings of the kind of the version in use (its schedule).",
            labels=["experiment", "metric", "kind"],
        )
        failing = GaugeMetricFamily(
            "splitlab_trainer_failures_in_a_row",
            "Failed trainings since the newest done one, per experiment, metric and kind.",
            labels=["experiment", "metric", "kind"],
        )
        flag = GaugeMetricFamily(
            "splitlab_trainer_model_stale",
            "1 when the version in use is older than its schedule allows.",
            labels=["experiment", "metric"],
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(text(QUERY), {"factor": STALE_FACTOR}).all()
        except Exception:
            logger.warning("catalogue metrics unavailable (Postgres)", exc_info=False)
            rows = []
        for part, a, b, c, value in rows:
            if part == "status":
                trainings.add_metric([a], value)
            elif part == "duration":
                duration.add_metric([a, b, c], value)
            elif part == "age":
                age.add_metric([a, b, c], value)
            elif part == "schedule":
                schedule.add_metric([a, b, c], value)
            elif part == "failing":
                failing.add_metric([a, b, c], value)
            else:
                flag.add_metric([a, b], value)
        yield from (trainings, duration, age, schedule, failing, flag)

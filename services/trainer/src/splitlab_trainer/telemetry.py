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
from sqlalchemy import Engine

from splitlab_trainer.repository.telemetry import catalogue_metrics

logger = logging.getLogger(__name__)

STALE_FACTOR = 2.0
"""A version in use older than this many schedule periods is stale (one missed run allowed)."""


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
                rows = catalogue_metrics(connection, STALE_FACTOR)
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

"""One training of an experiment metric's CUPAC models: read, fit, choose, publish.

``Trainer.run(model_ids)`` takes the catalogue rows a task carries (one experiment and metric;
one row per model kind to fit) and:

1. marks them running (a re-delivered task finds them running and starts over; one that is
   already done or failed is a duplicate delivery and does nothing);
2. reads the experiment's units once (:mod:`splitlab_trainer.repository.training_data`);
3. fits the **in-experiment** model: cross-fitted, linear vs gradient boosting (with a bounded
   hyperparameter search) by out-of-fold R^2 under the time budget
   (:func:`splitlab.core.stats.cupac.cross_fit_predictions`);
4. fits the **pre-experiment** model on history before the experiment's start (features as of
   a cutoff, the metric over the window after it) and applies it to every unit from its
   pre-exposure features; when this run does not refit it, the newest fitted one predicts the
   units exposed since, without refitting;
5. chooses per metric: the pre-experiment model when its R^2 on the experiment's units is at
   least the in-experiment model's out-of-fold R^2, else the in-experiment model;
6. records every figure and switches the predictions to the chosen version in one
   transaction (:meth:`CatalogueRepository.complete`).
"""

from __future__ import annotations

import logging
import math
import pickle
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from splitlab.core.stats.cupac import BOOSTING_GRID, MODELS, cross_fit_predictions, r2_score
from splitlab.core.stats.cupac_history import fit_on_history
from splitlab.platform.settings import Settings
from splitlab_trainer.definitions import MetricSpec
from splitlab_trainer.features import Design, raw_features, target
from splitlab_trainer.repository import (
    CatalogueRepository,
    EntityRepository,
    EntitySpec,
    ExperimentReader,
    ExperimentRef,
)
from splitlab_trainer.repository.training_data import (
    Binder,
    UnitRows,
    experiment_units_sql,
    history_units_sql,
    read_sliced,
    rows_sql,
    sliced_units,
)

logger = logging.getLogger(__name__)

MIN_UNITS = 200
"""Fewer experiment units with the metric than this: no model (as ``splitlab.analyze``)."""
MIN_HISTORY_UNITS = 200
"""Fewer history units with the metric than this: no pre-experiment model."""
FOLDS = 5


class TrainingError(Exception):
    """A training that cannot run; the message is the catalogue's error, naming the fix."""


@dataclass(frozen=True)
class Candidate:
    model_id: int
    kind: str
    family: str
    r2: float
    predictions: np.ndarray
    """One per experiment unit (in-experiment: NaN for units without the metric)."""


def entity_for(key: str, entities: EntityRepository, settings: Settings) -> EntitySpec:
    for row in entities.all():
        if key in row.experiments:
            return EntitySpec(
                row.name,
                tuple(row.features),
                tuple(row.families),
                row.in_experiment_every_seconds,
                row.pre_experiment_every_seconds,
                row.history_days,
            )
    return default_entity(settings)


def default_entity(settings: Settings) -> EntitySpec:
    return EntitySpec(
        "default",
        (),
        MODELS,
        settings.trainer_every_seconds,
        settings.trainer_every_seconds,
        settings.trainer_history_days,
    )


def model_features(metric: MetricSpec, entity: EntitySpec) -> list[str]:
    """The metric's own covariates, then the entity's features."""
    return list(dict.fromkeys([*metric.covariates, *entity.features]))


def peak_memory_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB). The worker runs one task per
    child process (``worker_max_tasks_per_child=1``), so it is this training's peak."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class Trainer:
    def __init__(
        self,
        engine: Engine,
        catalogue: CatalogueRepository,
        experiments: ExperimentReader,
        entities: EntityRepository,
        settings: Settings,
    ) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.experiments = experiments
        self.entities = entities
        self.settings = settings

    def run_many(self, model_ids: Sequence[int]) -> dict[str, Any]:
        """Run the trainings of ``model_ids`` grouped by experiment metric."""
        groups: dict[tuple[str, str], list[int]] = {}
        for row in self.catalogue.many(model_ids):
            groups.setdefault((row.experiment_key, row.metric), []).append(row.id)
        return {"trainings": [self.run(ids) for ids in groups.values()]}

    def run(self, model_ids: Sequence[int]) -> dict[str, Any]:
        rows = [r for r in (self.catalogue.start(i) for i in model_ids) if r is not None]
        if not rows:
            return {"status": "skipped", "reason": "already finished (a duplicate delivery)"}
        ids = [r.id for r in rows]
        kinds = {r.kind: r.id for r in rows}
        key, metric_name = rows[0].experiment_key, rows[0].metric
        started = time.perf_counter()
        report = _Progress(self.catalogue, ids)
        try:
            return self._run(key, metric_name, kinds, started, report)
        except TrainingError as exc:
            self.catalogue.fail(ids, str(exc))
            return {"status": "failed", "error": str(exc), "models": ids}

    def _run(
        self,
        key: str,
        metric_name: str,
        kinds: dict[str, int],
        started: float,
        report: _Progress,
    ) -> dict[str, Any]:
        experiment = self.experiments.get(key)
        if experiment is None:
            raise TrainingError(f"experiment_key: no experiment {key!r}")
        metric = self.experiments.metrics([metric_name]).get(metric_name)
        if metric is None:
            raise TrainingError(
                f"metric: {metric_name!r} has no plain metric definition (ratio metrics get no "
                "CUPAC model); define it with POST /metrics on the analyzer"
            )
        entity = entity_for(key, self.entities, self.settings)
        features = model_features(metric, entity)
        if metric.pre_period_days <= 0 and not features:
            raise TrainingError(
                f"metric: {metric_name!r} has no covariates (no pre-period, no features); give it "
                "covariates or a pre_period_days > 0, or add features to its entity"
            )
        rows = self._experiment_rows(experiment, metric, features)
        read_seconds = time.perf_counter() - started
        report(0.1)
        y = target(rows, 0, metric)
        keep = ~np.isnan(y)
        if int(keep.sum()) < MIN_UNITS:
            raise TrainingError(
                f"experiment_key: {int(keep.sum())} units of {key!r} have a value of "
                f"{metric_name!r}; CUPAC needs at least {MIN_UNITS}"
            )
        raw, names = raw_features(rows, 0, metric, features, features)
        figures: dict[int, dict[str, Any]] = {}
        candidates: list[Candidate] = []
        if "in_experiment" in kinds:
            model_id = kinds["in_experiment"]
            candidate, figures[model_id] = self._in_experiment(
                model_id, raw, names, y, keep, entity, started, report
            )
            fit_seconds = figures[model_id].pop("fit_seconds")
            figures[model_id]["notes"].insert(
                0,
                f"read {rows.size} units in {read_seconds:.1f} s "
                f"({self.settings.trainer_read_slices} slices), fitted in {fit_seconds:.1f} s",
            )
            candidates.append(candidate)
        pre = self._pre_experiment(
            kinds.get("pre_experiment"), experiment, metric, features, entity, raw, y, keep
        )
        if pre is not None:
            candidate, values = pre
            if values is not None:
                values.update(
                    duration_seconds=time.perf_counter() - started,
                    peak_memory_bytes=peak_memory_bytes(),
                )
                figures[candidate.model_id] = values
            if candidate.predictions.size:
                candidates.append(candidate)
        report(0.95)
        for values in figures.values():
            values["experiment_units"] = rows.size
        chosen = self._choose(key, metric_name, candidates)
        if chosen is None:
            self.catalogue.complete(figures)
        else:
            predicted = ~np.isnan(chosen.predictions)
            units = [u for u, p in zip(rows.unit_ids, predicted, strict=True) if p]
            self.catalogue.complete(
                figures,
                chosen.model_id,
                key,
                metric_name,
                units,
                chosen.predictions[predicted].tolist(),
                chosen.family,
            )
        return {
            "status": "done",
            "experiment_key": key,
            "metric": metric_name,
            "models": sorted(figures),
            "in_use": None if chosen is None else chosen.model_id,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _query(self, sql: str, params: dict[str, Any]) -> UnitRows:
        return read_sliced(self.engine, sql, params, self.settings.trainer_read_slices)

    def _experiment_rows(
        self, experiment: ExperimentRef, metric: MetricSpec, features: Sequence[str]
    ) -> UnitRows:
        bind = Binder()
        units = sliced_units(experiment_units_sql(bind, experiment.key, experiment.variants))
        return self._query(rows_sql(units, [metric], features, bind, experiment.key), bind.params)

    def _history_rows(
        self,
        experiment: ExperimentRef,
        metric: MetricSpec,
        features: Sequence[str],
        cutoff: datetime,
        window_days: float,
    ) -> UnitRows:
        bind = Binder()
        units = sliced_units(
            history_units_sql(bind, [metric], features, cutoff, experiment.key, window_days)
        )
        sql = rows_sql(units, [metric], features, bind, experiment.key, window_days)
        return self._query(sql, bind.params)

    def _in_experiment(
        self,
        model_id: int,
        raw: np.ndarray,
        names: list[str],
        y: np.ndarray,
        keep: np.ndarray,
        entity: EntitySpec,
        started: float,
        report: _Progress,
    ) -> tuple[Candidate, dict[str, Any]]:
        fitting = time.perf_counter()
        design = Design.fit(raw[keep], names)
        x = design.apply(raw[keep])

        def progress(_: str, done: int, total: int) -> None:
            report(0.1 + 0.7 * done / total)

        fit = cross_fit_predictions(
            x,
            y[keep],
            FOLDS,
            models=[m for m in MODELS if m in entity.families] or list(MODELS),
            time_budget_s=self.settings.trainer_time_budget_seconds,
            progress=progress,
            boosting_grid=BOOSTING_GRID,
        )
        predictions = np.full(y.shape[0], np.nan)
        predictions[keep] = fit.predictions
        r2 = fit.r2[fit.model]
        values = {
            "status": "done",
            "family": fit.model,
            "params": fit.params,
            "features": design.columns,
            "rows": int(keep.sum()),
            "r2": _finite(r2),
            "r2_candidates": {k: _finite(v) for k, v in fit.r2.items()},
            "notes": list(fit.notes),
            "fit_seconds": time.perf_counter() - fitting,
            "duration_seconds": time.perf_counter() - started,
            "peak_memory_bytes": peak_memory_bytes(),
        }
        return Candidate(model_id, "in_experiment", fit.model, r2, predictions), values

    def _pre_experiment(
        self,
        model_id: int | None,
        experiment: ExperimentRef,
        metric: MetricSpec,
        features: Sequence[str],
        entity: EntitySpec,
        raw: np.ndarray,
        y: np.ndarray,
        keep: np.ndarray,
    ) -> tuple[Candidate, dict[str, Any] | None] | None:
        """A fresh fit when ``model_id`` is given; else the newest fitted pre-experiment model
        applied to the current units (None when there is none)."""
        if model_id is None:
            latest = self.catalogue.latest_done(experiment.key, metric.name, "pre_experiment")
            if latest is None or latest.artifact is None:
                return None
            stored = pickle.loads(latest.artifact)  # our own write (see TrainedModel.artifact)
            predictions = stored["model"].predict(stored["design"].apply(raw))
            r2 = r2_score(y[keep], predictions[keep])
            return Candidate(latest.id, "pre_experiment", str(latest.family), r2, predictions), None
        empty = Candidate(model_id, "pre_experiment", "", math.nan, np.empty(0))
        if metric.source != "outcome":
            reason = (
                f"no history: {metric.name!r} counts the experiment's own predictions, which do "
                "not exist before it starts (pre-experiment models need an outcome metric)"
            )
            return empty, {"status": "failed", "error": reason}
        if experiment.started_at is None:
            return empty, {"status": "failed", "error": "no history: the experiment never started"}
        window = metric.attribution_window_seconds or entity.history_days * 86400.0
        cutoff = experiment.started_at - timedelta(seconds=window)
        history = self._history_rows(experiment, metric, features, cutoff, entity.history_days)
        y_h = target(history, 0, metric)
        keep_h = ~np.isnan(y_h)
        if int(keep_h.sum()) < MIN_HISTORY_UNITS:
            reason = (
                f"no history: {int(keep_h.sum())} units with {metric.name!r} in the "
                f"{window / 86400:g} days before {experiment.started_at.isoformat()} (cutoff "
                f"{cutoff.isoformat()}); a pre-experiment model needs at least {MIN_HISTORY_UNITS}"
            )
            return empty, {"status": "failed", "error": reason, "cutoff_at": cutoff}
        raw_h, names = raw_features(history, 0, metric, features, list(features))
        design = Design.fit(raw_h[keep_h], names)
        fit = fit_on_history(
            design.apply(raw_h[keep_h]),
            y_h[keep_h],
            models=[m for m in MODELS if m in entity.families] or list(MODELS),
            boosting_grid=BOOSTING_GRID,
        )
        predictions = fit.model.predict(design.apply(raw))
        r2 = r2_score(y[keep], predictions[keep])
        values = {
            "status": "done",
            "family": fit.family,
            "params": fit.params,
            "features": design.columns,
            "rows": fit.rows,
            "r2": _finite(r2),
            "r2_candidates": {f"holdout_{k}": _finite(v) for k, v in fit.r2.items()},
            "notes": [
                f"R^2 {r2:.4f} on the experiment's {int(keep.sum())} units; "
                f"holdout R^2 on history {fit.r2[fit.family]:.4f}",
                *fit.notes,
            ],
            "cutoff_at": cutoff,
            "artifact": pickle.dumps({"model": fit.model, "design": design}),
        }
        return Candidate(model_id, "pre_experiment", fit.family, r2, predictions), values

    def _choose(self, key: str, metric: str, candidates: list[Candidate]) -> Candidate | None:
        """The pre-experiment model when its R^2 on the experiment's units is at least the
        in-experiment model's out-of-fold R^2 (this run's, else the newest fitted one's)."""
        by_kind = {c.kind: c for c in candidates if not math.isnan(c.r2)}
        pre, inside = by_kind.get("pre_experiment"), by_kind.get("in_experiment")
        if inside is None:
            latest = self.catalogue.latest_done(key, metric, "in_experiment")
            if pre is not None and latest is not None and latest.r2 is not None:
                return pre if pre.r2 >= latest.r2 else None
            return pre
        if pre is not None and pre.r2 >= inside.r2:
            return pre
        return inside


class _Progress:
    """Writes progress to the catalogue at most once a second."""

    def __init__(self, catalogue: CatalogueRepository, ids: list[int]) -> None:
        self.catalogue = catalogue
        self.ids = ids
        self.last = 0.0

    def __call__(self, share: float) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            self.catalogue.progress(self.ids, share)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None

"""Filling the CUPAC covariate table on demand with ``splitlab``'s cross-fitted CUPAC.

For each plain metric of an experiment that has covariates (its pre-period value, features),
the per-unit values are read once (ordered by unit id), a model of the metric from the
pre-exposure covariates is cross-fitted (out-of-fold predictions, so the prediction of a unit
never saw that unit's outcome), and the predictions are stored in ``cupac_predictions``. This
is the one place the analyzer reads units into Python; the trainer service will take the job
over (same table), and results then aggregate the column like any other covariate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import text

from splitlab.stats.cupac import cross_fit_predictions
from splitlab_analyzer.repositories import CupacRepository
from splitlab_analyzer.results.service import ResultsService
from splitlab_analyzer.results.sql import ResultsQuery
from splitlab_analyzer.rollups.store import built_digest, count_units

MIN_UNITS = 200
"""Fewer units with the metric than this: no fit (as ``splitlab.analyze``)."""


class CupacFiller:
    def __init__(self, results: ResultsService, cupac: CupacRepository) -> None:
        self.results = results
        self.cupac = cupac

    def fill(
        self, key: str, folds: int = 5, random_state: int = 0, params: dict[str, Any] | None = None
    ) -> dict[str, dict[str, Any]]:
        info = self.results.experiment(key)
        metrics, found = self.results.definitions(info)
        query = ResultsQuery(key, info.variants, metrics, found)
        caught = self.results.catch_up_rollups(key, query)
        with self.results.engine.connect().execution_options(
            isolation_level="REPEATABLE READ"
        ) as connection:
            rollups = caught is not None and built_digest(connection, key) == query.plan.digest
            size = 0 if rollups else count_units(connection, key)
            for statement in query.settings_sql(rollups, size):
                connection.execute(text(statement))
            rows = (
                connection.execute(text(query.per_unit_sql(rollups)), query.params).mappings().all()
            )
        out: dict[str, dict[str, Any]] = {}
        for plan in query.planned:
            name = plan.definition.name
            if plan.denominator is not None or not plan.covariates:
                out[name] = {"status": "skipped", "reason": "ratio metric or no covariates"}
                continue
            kept = [r for r in rows if r[plan.y] is not None]
            if len(kept) < max(MIN_UNITS, 2 * folds):
                out[name] = {"status": "skipped", "reason": f"{len(kept)} units with the metric"}
                continue
            x = np.array([[float(r[c.column]) for c in plan.covariates] for r in kept])
            y = np.array([float(r[plan.y]) for r in kept])
            fit = cross_fit_predictions(x, y, folds, random_state=random_state,
                                        boosting_params=params)  # fmt: skip
            units = [str(r["unit_id"]) for r in kept]
            self.cupac.replace(key, name, units, fit.predictions.tolist(), fit.model)
            out[name] = {
                "status": "filled",
                "units": len(units),
                "model": fit.model,
                "oof_r2": {k: (v if np.isfinite(v) else None) for k, v in fit.r2.items()},
                "computed_at": datetime.now(UTC).isoformat(),
            }
        return out

"""Planning inputs of ``splitlab power`` that come from the platform: the variance reduction a
trained CUPAC model gives a metric.

A CUPAC model's out-of-fold R^2 on the experiment's units is the share of the metric's variance
its predictions explain; adjusting by the predictions (one covariate, pooled slope) leaves
``1 - R^2`` of the variance, so the expected ``variance_reduction`` is ``R^2`` (0 for a model
that explains nothing: a negative R^2 never adds variance, the adjustment's slope goes to 0).
The model read is the trainer's catalogue entry in use for the metric (else the newest done
one), optionally of one experiment.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from splitlab.cli.experiments import CommandError
from splitlab.cli.training import trainer_request

__all__ = ["CupacReduction", "cupac_variance_reduction"]


@dataclass(frozen=True)
class CupacReduction:
    variance_reduction: float
    model: dict[str, Any]
    """The catalogue entry it was read from (``id``, ``experiment_key``, ``r2``...)."""


def cupac_variance_reduction(metric: str, experiment: str | None = None) -> CupacReduction:
    """The expected variance reduction from the trainer's CUPAC model of ``metric``."""
    query = {"metric": metric, "status": "done", "limit": 50}
    if experiment:
        query["experiment_key"] = experiment
    models = trainer_request("GET", "/models?" + urllib.parse.urlencode(query))["models"]
    usable = [m for m in models if m.get("r2") is not None]
    if not usable:
        where = f" of experiment {experiment!r}" if experiment else ""
        raise CommandError(
            f"--cupac-metric: the trainer has no finished CUPAC model of metric {metric!r}"
            f"{where}; train one (`splitlab training run KEY --metric {metric}`) or pass "
            "--variance-reduction"
        )
    chosen = next((m for m in usable if m.get("in_use")), usable[0])
    r2 = float(chosen["r2"])
    return CupacReduction(min(max(r2, 0.0), 0.99), chosen)

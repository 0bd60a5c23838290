"""Synthetic control and forecast counterfactuals for changes that cannot be randomized.

``synthetic_control`` builds a counterfactual for a treated unit (or the mean of several) from
untreated donor units: classic simplex weights, a ridge-augmented variant, or an ML forecast,
with ``auto`` choosing by held-out pre-period fit; inference comes from in-space and in-time
placebos. Pure statistics: numpy, scipy, scikit-learn and pandas only.
"""

from __future__ import annotations

from splitlab.core.synth.estimator import synthetic_control
from splitlab.core.synth.inference import InTimePlacebo, PlaceboRun
from splitlab.core.synth.panel import Panel, build_panel, missing_cells
from splitlab.core.synth.result import PeriodEffect, SyntheticControlResult

__all__ = [
    "InTimePlacebo",
    "Panel",
    "PeriodEffect",
    "PlaceboRun",
    "SyntheticControlResult",
    "build_panel",
    "missing_cells",
    "synthetic_control",
]

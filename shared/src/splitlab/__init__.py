"""SplitLab: online experimentation for machine-learning models.

The public API is small and stable; everything else lives in submodules, by floor
(docs/layout.md): ``splitlab.core`` (pure), ``splitlab.contracts``, ``splitlab.platform`` (the
``[platform]`` extra), and the shell on top (``assigning``, ``web``, ``cli``, ``reports``,
``simulation``).

- ``splitlab.analyze`` -- variance-reduced analysis of per-unit data
  (``splitlab.core.analysis.analyze``);
- ``splitlab.sample_size`` / ``splitlab.mde`` -- power calculations (``splitlab.core.stats.power``);
- ``splitlab.holdout_impact`` -- the global holdout against everyone else, per day
  (``splitlab.core.analysis.holdout``);
- ``splitlab.synthetic_control`` -- counterfactuals for changes that cannot be randomized
  (``splitlab.core.synth``);
- ``splitlab.core.assignment.bucketing`` -- GrowthBook-compatible deterministic bucketing.

Names are imported lazily so that ``import splitlab`` stays cheap for the services and the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "analyze": "splitlab.core.analysis.analyze",
    "AnalysisResult": "splitlab.core.analysis.analyze",
    "sample_size": "splitlab.core.stats.power",
    "mde": "splitlab.core.stats.power",
    "holdout_impact": "splitlab.core.analysis.holdout",
    "HoldoutImpact": "splitlab.core.analysis.holdout",
    "synthetic_control": "splitlab.core.synth",
    "SyntheticControlResult": "splitlab.core.synth",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'splitlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value

"""What the studies share: a Monte Carlo rate with its standard error, and the checks table."""

from __future__ import annotations

import numpy as np


def rate(hits: np.ndarray) -> dict[str, float]:
    """The share of true values in ``hits`` and its Monte Carlo SE, sqrt(p (1 - p) / R)."""
    p = float(np.mean(hits))
    return {"rate": p, "mc_se": float(np.sqrt(p * (1 - p) / hits.size))}


def checks_table(checks: dict[str, bool]) -> list[str]:
    """The markdown lines of a study's checks, one row per check."""
    lines = ["## Checks", "", "| check | passed |", "| --- | --- |"]
    return lines + [f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in checks.items()]

"""What the studies share: a Monte Carlo rate with its standard error, markdown tables."""

from __future__ import annotations

import numpy as np


def rate(hits: np.ndarray) -> dict[str, float]:
    """The share of true values in ``hits`` and its Monte Carlo SE, sqrt(p (1 - p) / R)."""
    p = float(np.mean(hits))
    return {"rate": p, "mc_se": float(np.sqrt(p * (1 - p) / hits.size))}


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """The markdown lines of a table: the header, its rule, a line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def checks_table(checks: dict[str, bool]) -> list[str]:
    """The markdown lines of a study's checks, one row per check."""
    rows = [[name, "yes" if ok else "**no**"] for name, ok in checks.items()]
    return ["## Checks", "", *table(["check", "passed"], rows)]

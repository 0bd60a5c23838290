"""Every unit's value of the metrics whose test needs them (pure): the rows of
:meth:`~splitlab_analyzer.results.repository.query.ResultsQuery.values_sql` -> per metric, per
variant, an array in the rows' order (ascending ``unit_id``), units without a value left out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["unit_values"]


def unit_values(
    rows: Sequence[Sequence[Any]],
    variants: Sequence[str],
    metrics: Sequence[str],
) -> dict[str, dict[str, np.ndarray]]:
    """``rows`` are ``(variant, v0, v1, ...)`` with ``v{j}`` the value of ``metrics[j]``."""
    if not rows:
        return {m: {v: np.empty(0) for v in variants} for m in metrics}
    labels = np.asarray([str(r[0]) for r in rows])
    table = np.array(
        [[np.nan if x is None else float(x) for x in list(r)[1:]] for r in rows],
        dtype=np.float64,
    ).reshape(len(rows), len(metrics))
    out: dict[str, dict[str, np.ndarray]] = {}
    for j, name in enumerate(metrics):
        column = table[:, j]
        present = ~np.isnan(column)
        out[name] = {v: column[(labels == v) & present] for v in variants}
    return out

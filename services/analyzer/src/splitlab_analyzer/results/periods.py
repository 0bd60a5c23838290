"""Allocation periods in the results: what ``analyze_statistics`` needs to test SRM per period
and stratify effects by split (pure).

The registry stores every period (``allocation_periods``: start, weights); the results query
counts each period's units (by first exposure). With a single period in the data nothing is
passed, so the answer is exactly the pooled analysis (and has no ``periods`` block). A period
in the data that the registry did not store (units from an experiment started before periods
were recorded, or written without the registry) takes the latest stored split before it, else
the experiment's current weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from splitlab_analyzer.repository import PeriodInfo


def period_options(
    period_counts: Mapping[int, Mapping[str, int]],
    stored: Sequence[PeriodInfo],
    current_weights: Mapping[str, float],
) -> dict[str, Any]:
    """Keyword arguments of ``analyze_statistics`` for the periods (none for one period)."""
    if len(period_counts) < 2:
        return {}
    known = {p.period: p for p in stored}
    weights: dict[int, Mapping[str, float]] = {}
    starts: dict[int, str] = {}
    for period in sorted(period_counts):
        if period in known:
            weights[period] = known[period].weights
            starts[period] = known[period].started_at.isoformat()
            continue
        earlier = [p for p in stored if p.period < period]
        weights[period] = earlier[-1].weights if earlier else current_weights
    return {
        "period_counts": {p: dict(c) for p, c in period_counts.items()},
        "period_weights": weights,
        "period_starts": starts,
    }

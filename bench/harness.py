"""The contract between ``bench/run.py`` and the benchmark modules.

A benchmark module is ``bench/bench_<name>.py`` with ``run() -> list[BenchResult]``. Every
figure is measured in the same process or session as its baseline, and targets are stated as
ratios against that baseline (or as an absolute bound the issue fixes), never asserted in tests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BenchResult:
    benchmark: str
    """Dotted name, e.g. ``stats.analyze_1m_units``."""
    figures: dict[str, float]
    """Measured numbers; the unit is part of the key (``_s``, ``_ms``, ``_per_s``, ``ratio``)."""
    target: str
    """The target in words, e.g. ``splitlab_s <= tea_tasting_s``."""
    met: bool | None
    """Whether the target holds; None where the benchmark only reports."""
    notes: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()``, in seconds."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return min(timings)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return float(statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1])

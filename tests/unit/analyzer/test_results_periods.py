"""Allocation periods in the analyzer (pure parts): exposure rows carry the period, the results
query's rows per (variant, period) become per-period statistics, and the registry's periods
become the engine's options."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from splitlab.contracts.events import ExposureEvent
from splitlab.core.stats.sufficient import Moments
from splitlab_analyzer.consumer.rows import TABLE_COLUMNS, RawRecord, build_batch
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.repositories import PeriodInfo
from splitlab_analyzer.results.periods import period_options
from splitlab_analyzer.results.plan import PlannedMetric
from splitlab_analyzer.results.statistics import read_statistics

PLANNED = [PlannedMetric(MetricDef("revenue", "outcome", "purchase", "sum"), "y0")]


def test_exposure_rows_carry_the_period_and_events_without_it_are_period_zero() -> None:
    event = ExposureEvent(
        unit_id="u1", experiment_key="e", variant="control", bucket_version=0, reason="hashed",
        allocation_period=3,
    )  # fmt: skip
    old = json.loads(event.to_bytes())
    del old["allocation_period"]
    old["event_id"] = str(uuid.uuid4())
    records = [
        RawRecord("splitlab.exposures.v1", 0, i, b"u1", payload)
        for i, payload in enumerate([event.to_bytes(), json.dumps(old).encode()])
    ]
    batch = build_batch(records, {"splitlab.exposures.v1": "exposure"})
    column = TABLE_COLUMNS["exposure"].index("allocation_period")
    assert [row[column] for row in batch.rows["exposure"]] == [3, 0]
    assert not batch.dead_letters


def rows_for(values: dict[tuple[str, int], np.ndarray]) -> list[dict[str, Any]]:
    out = []
    for (variant, period), y in values.items():
        out.append(
            {
                "variant": variant,
                "allocation_period": period,
                "units": int(y.size),
                "first_at": datetime(2026, 1, 1, tzinfo=UTC),
                "last_at": datetime(2026, 1, 2, tzinfo=UTC),
                "m0_n": int(y.size),
                "m0_binary": False,
                "m0_mean0": float(y.mean()),
                "m0_s0_0": float(((y - y.mean()) ** 2).sum()),
            }
        )
    return out


def test_rows_per_period_become_per_period_statistics_that_merge_into_the_pooled_ones() -> None:
    rng = np.random.default_rng(0)
    values = {
        (v, p): rng.normal(p, 1, n)
        for (v, p, n) in [("control", 0, 50), ("treatment", 0, 40), ("control", 2, 10),
                          ("treatment", 2, 90)]
    }  # fmt: skip
    stats = read_statistics(rows_for(values), ["control", "treatment"], PLANNED, [], [])
    assert stats.period_counts == {
        0: {"control": 50, "treatment": 40},
        2: {"control": 10, "treatment": 90},
    }
    metric = stats.metrics[0]
    assert metric.periods is not None
    for (variant, period), y in values.items():
        assert metric.periods[period][variant].allclose(Moments.from_arrays(y))
    pooled = np.concatenate([values[("treatment", 0)], values[("treatment", 2)]])
    assert metric.moments["treatment"].allclose(Moments.from_arrays(pooled))


def test_period_options_use_the_stored_splits_and_nothing_for_one_period() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    stored = [
        PeriodInfo(0, start, {"control": 50, "treatment": 50}, 1.0, []),
        PeriodInfo(1, start, {"control": 20, "treatment": 80}, 1.0, ["variants[0].weight"]),
    ]
    current = {"control": 10.0, "treatment": 90.0}
    assert period_options({0: {"control": 5, "treatment": 5}}, stored, current) == {}
    counts = {0: {"control": 5, "treatment": 5}, 1: {"control": 2, "treatment": 8},
              2: {"control": 1, "treatment": 9}}  # fmt: skip
    options = period_options(counts, stored, current)
    assert options["period_weights"] == {
        0: {"control": 50, "treatment": 50},
        1: {"control": 20, "treatment": 80},
        2: {"control": 20, "treatment": 80},  # not stored: the latest stored split before it
    }
    assert options["period_starts"] == {0: start.isoformat(), 1: start.isoformat()}
    assert period_options({4: {}, 5: {}}, [], current)["period_weights"] == {4: current, 5: current}


@pytest.mark.parametrize("missing", [None, 0])
def test_rows_without_a_period_belong_to_period_zero(missing: Any) -> None:
    rows = rows_for({("control", 0): np.arange(5.0), ("treatment", 0): np.arange(6.0)})
    for row in rows:
        row["allocation_period"] = missing
    stats = read_statistics(rows, ["control", "treatment"], PLANNED, [], [])
    assert stats.period_counts == {0: {"control": 5, "treatment": 6}}

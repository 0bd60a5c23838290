"""The results query by segment (pure parts): the segment joins the first exposure's
attributes and joins the one aggregation's GROUP BY with bound values; rows read per
(segment, period) cell give the same overall statistics as the plain read; cached apart."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from splitlab.core.analysis.segments import MISSING, parse_segment
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.results.cache import ResultsCache
from splitlab_analyzer.results.plan import PlannedMetric
from splitlab_analyzer.results.repository.query import ResultsQuery
from splitlab_analyzer.results.segments import cell_rows, split_statistics
from splitlab_analyzer.results.statistics import read_statistics
from splitlab_analyzer.service.automation import cache_name

REVENUE = MetricDef("revenue", "outcome", "purchase", "sum", pre_period_days=0)


def test_the_segment_is_grouped_in_the_one_aggregation_with_bound_values() -> None:
    spec = parse_segment("tenure'; DROP TABLE x; --:0,30")
    query = ResultsQuery("exp", ["control", "t"], [REVENUE], {"revenue": REVENUE}, segment=spec)
    sql = query.aggregate_sql(rollups=True)
    assert "DROP TABLE" not in sql
    assert "tenure'; DROP TABLE x; --" in query.params.values()
    assert [0.0, 30.0] in query.params.values()
    # The stored rollups carry the first exposure's attributes: no join.
    assert "experiment_units" not in sql
    assert "width_bucket((u.attributes ->> :seg_attr0)::float8" in sql
    assert "GROUP BY variant, allocation_period, seg" in sql
    assert sql.count("SELECT") == 2  # the per-unit CTE and the aggregation: still one query
    assert "SET LOCAL enable_sort = off" in query.settings_sql(rollups=True)
    events = query.aggregate_sql(rollups=False)
    assert "LEFT JOIN experiment_units eu ON eu.experiment_key = :key0" in events
    assert "GROUP BY variant, allocation_period, seg" in events
    assert "SET LOCAL enable_sort = off" not in query.settings_sql(rollups=False)
    plain = ResultsQuery("exp", ["control", "t"], [REVENUE], {"revenue": REVENUE})
    assert "experiment_units eu" not in plain.aggregate_sql(rollups=False)
    assert "attributes" not in plain.aggregate_sql(rollups=True)
    assert "enable_sort" not in " ".join(plain.settings_sql(rollups=True))
    categorical = ResultsQuery("exp", ["control", "t"], [REVENUE], {"revenue": REVENUE},
                               segment=parse_segment("country"))  # fmt: skip
    assert "NULLIF(eu.attributes ->> :seg_attr0, '') AS seg" in categorical.aggregate_sql()
    rollups = categorical.aggregate_sql(rollups=True)
    assert "NULLIF(u.attributes ->> :seg_attr0, '') AS seg" in rollups


def rows(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Grouped rows of one metric without covariates: per variant, period and segment."""
    out = []
    for variant in ("control", "t"):
        for period in (0, 1):
            for seg in ("FR", "US", None):
                y = rng.gamma(2.0, 3.0, int(rng.integers(5, 40)))
                out.append({
                    "variant": variant, "allocation_period": period, "seg": seg,
                    "units": y.size + 2, "first_at": None, "last_at": None,
                    "m0_n": y.size, "m0_binary": False, "m0_mean0": float(y.mean()),
                    "m0_s0_0": float(((y - y.mean()) ** 2).sum()),
                })  # fmt: skip
    return out


def test_cells_split_into_the_overall_and_each_segment() -> None:
    grouped = rows(np.random.default_rng(0))
    planned = [PlannedMetric(REVENUE, "y0", None)]
    plain = read_statistics(grouped, ["control", "t"], planned, [], [])
    cells = cell_rows(parse_segment("country"), grouped)
    assert cells.labels == ["FR", "US", MISSING]
    stats, segments = split_statistics(
        read_statistics(cells.rows, ["control", "t"], planned, [], []), cells.cells
    )
    assert stats.counts == plain.counts
    assert stats.period_counts == plain.period_counts
    for v in ("control", "t"):
        want, got = plain.metrics[0].moments[v], stats.metrics[0].moments[v]
        assert got.n == want.n
        assert got.mean == pytest.approx(want.mean, rel=1e-12)
        assert got.comoment == pytest.approx(want.comoment, rel=1e-12)
        assert plain.metrics[0].periods is not None
        assert stats.metrics[0].periods is not None
        assert stats.metrics[0].periods[1][v].n == plain.metrics[0].periods[1][v].n
    assert [s.label for s in segments] == ["FR", "US", MISSING]
    us = next(s for s in segments if s.label == "US")
    mine = [r for r in grouped if r["seg"] == "US" and r["variant"] == "t"]
    assert us.counts["t"] == sum(r["units"] for r in mine)
    assert us.metrics[0].moments["t"].n == sum(r["m0_n"] for r in mine)
    assert us.period_counts == {
        p: {v: sum(r["units"] for r in grouped if r["seg"] == "US" and r["variant"] == v
                   and r["allocation_period"] == p) for v in ("control", "t")}
        for p in (0, 1)
    }  # fmt: skip


def test_segmented_answers_are_cached_apart_and_invalidated_together() -> None:
    cache = ResultsCache(None, ttl_seconds=60)
    by_country = cache_name("auto", parse_segment("country"))
    assert by_country == "auto/segment=country/holm"
    assert cache_name("auto", parse_segment("country"), "benjamini-hochberg") != by_country
    assert cache_name("auto", None) == "auto"
    cache.put("exp", "auto", False, {"plain": 1})
    cache.put("exp", by_country, False, {"segments": 1})
    assert cache.get("exp", "auto", False) == {"plain": 1}
    assert cache.get("exp", by_country, False) == {"segments": 1}
    assert cache.get("exp", cache_name("auto", parse_segment("device")), False) is None
    cache.invalidate("exp")
    assert cache.get("exp", by_country, False) is None

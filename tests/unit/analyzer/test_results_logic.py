"""Guardrail test, power so far, metric definition rules, the SQL plan, the results cache."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from splitlab.core.analysis.monitoring import days_to_planned, guardrail_status
from splitlab.core.stats.comparison import ArmEstimate, Comparison, compare
from splitlab_analyzer.definitions import MetricDef, check_definition
from splitlab_analyzer.results.cache import ResultsCache
from splitlab_analyzer.results.repository.query import ResultsQuery


def comparison(rel: float, se: float, n: int = 10_000) -> Comparison:
    """Two arms of ``n / 2`` units; ``se`` is each arm mean's relative standard error."""
    var = (se * 100) ** 2
    control = ArmEstimate(n // 2, 100.0, var, math.inf, 100.0, var)
    treated = 100.0 * (1 + rel)
    treatment = ArmEstimate(n // 2, treated, var, math.inf, treated, var)
    return compare(control, treatment, alpha=0.05)


def test_a_clear_harm_beyond_the_margin_is_violated_and_a_small_one_is_not() -> None:
    harmful = guardrail_status("latency", "t", comparison(0.30, 0.01), 0.02, True, 0.05, 5000)
    assert harmful.violated
    assert harmful.harm == pytest.approx(0.30, rel=0.01)
    assert harmful.harm_lower is not None
    assert harmful.harm_lower > 0.02
    small = guardrail_status("latency", "t", comparison(0.01, 0.01), 0.02, True, 0.05, 5000)
    assert not small.violated
    assert small.always_valid_p_value == 1.0
    # Direction: for a higher-is-better metric a 30% increase is no harm at all.
    better = guardrail_status("revenue", "t", comparison(0.30, 0.01), 0.02, False, 0.05, 5000)
    assert not better.violated
    assert better.harm is not None
    assert better.harm < 0


def test_the_always_valid_test_is_stricter_than_the_fixed_one() -> None:
    c = comparison(0.055, 0.01)
    status = guardrail_status("latency", "t", c, 0.02, True, 0.05, 5000)
    fixed_lower_harm = c.rel_ci_lower
    assert fixed_lower_harm > 0.02  # the fixed-horizon CI would call it violated
    assert not status.violated  # the always-valid test wants more evidence


def test_days_to_planned() -> None:
    now = datetime(2026, 1, 11, tzinfo=UTC)
    out = days_to_planned(1000, 3000, now - timedelta(days=10), now)
    assert out == {"units_per_day": 100.0, "days_to_planned": 20.0}
    assert days_to_planned(0, 10, None, now)["days_to_planned"] is None


@pytest.mark.parametrize(
    ("metric", "field"),
    [
        (MetricDef("m", source="outcome", aggregation="sum"), "outcome_type"),
        (MetricDef("m", source="prediction_latency"), "aggregation"),
        (MetricDef("m", numerator="a"), "denominator"),
        (MetricDef("m", numerator="a", denominator="b", source="outcome"), "source"),
        (MetricDef("m", source="outcome", outcome_type="x", aggregation="sum",
                   covariates=("m_pre",)), "covariates"),
    ],
)  # fmt: skip
def test_definition_errors_name_the_field(metric: MetricDef, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        check_definition(metric)


def test_the_query_binds_values_and_reuses_shared_parts() -> None:
    revenue = MetricDef("revenue", "outcome", "purchase'; DROP TABLE x; --", "sum",
                        covariates=("spend",))  # fmt: skip
    clicks = MetricDef("clicks", "outcome", "click", "count", pre_period_days=0)
    ratio = MetricDef("rpc", numerator="revenue", denominator="clicks")
    query = ResultsQuery(
        "exp", ["control", "t"], [revenue, ratio], {"revenue": revenue, "clicks": clicks}
    )
    sql = query.aggregate_sql()
    assert "DROP TABLE" not in sql
    assert "purchase'; DROP TABLE x; --" in query.params.values()
    assert [b.name for b in query.bases] == ["revenue", "clicks"]
    assert query.planned[1].columns == ("y0", "y1")
    assert [c.name for c in query.planned[0].covariates] == ["revenue_pre", "spend"]
    # revenue reads a post and a pre slot of its outcome type; clicks (no pre-period) one slot
    assert [(s.outcome_type[:8], s.kind) for s in query.plan.slots] == [
        ("click", "post"), ("purchase", "post"), ("purchase", "pre"),
    ]  # fmt: skip
    assert "regr_sxy" in sql
    # per variant, allocation period and the feature's missing pattern
    assert "GROUP BY variant, allocation_period, (f0 IS NULL)" in sql
    assert "FROM outcomes" in sql
    stored = query.aggregate_sql(rollups=True)
    assert "FROM unit_rollups u" in stored
    assert "outcomes" not in stored


def test_memory_cache_expires_and_invalidates_per_experiment() -> None:
    cache = ResultsCache(None, ttl_seconds=60)
    cache.put("a", "auto", False, {"x": 1})
    cache.put("ab", "auto", False, {"x": 2})
    assert cache.get("a", "auto", False) == {"x": 1}
    assert cache.get("a", "auto", True) is None
    cache.invalidate("a")
    assert cache.get("a", "auto", False) is None
    assert cache.get("ab", "auto", False) == {"x": 2}
    expired = ResultsCache(None, ttl_seconds=1e-9)
    expired.put("a", "auto", False, {"x": 1})
    assert expired.get("a", "auto", False) is None


class FlakyRedis:
    """Stands in for ``redis.Redis``: fails every call while ``down``; counts the calls."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.data: dict[str, str] = {}

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Connection refused.")

    def get(self, name: str) -> str | None:
        self._call()
        return self.data.get(name)

    def set(self, name: str, value: str, px: int) -> None:
        self._call()
        self.data[name] = value


def test_redis_cache_failing_is_a_miss_then_left_alone_for_the_retry_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FlakyRedis()
    cache = ResultsCache(client, ttl_seconds=60, retry_seconds=0.05)  # type: ignore[arg-type]
    cache.put("a", "auto", False, {"x": 1})
    assert cache.get("a", "auto", False) == {"x": 1}
    client.down = True
    with caplog.at_level(logging.INFO, logger="splitlab_analyzer.results.cache"):
        assert cache.get("a", "auto", False) is None
        calls = client.calls
        cache.put("a", "auto", False, {"x": 2})  # skipped: Redis is left alone for a while
        assert cache.get("a", "auto", False) is None
        assert client.calls == calls
        time.sleep(0.06)
        assert cache.get("a", "auto", False) is None  # tried again, still down
        assert client.calls == calls + 1
        client.down = False
        time.sleep(0.06)
        assert cache.get("a", "auto", False) == {"x": 1}
        cache.put("a", "auto", False, {"x": 3})
        assert cache.get("a", "auto", False) == {"x": 3}
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("WARNING", "results cache unavailable; computing results without it", None),
        ("INFO", "results cache available again", None),
    ]

"""Sample ratio mismatch against configured weights."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from splitlab.core.stats.srm import srm_test


def test_matches_scipy_chisquare_with_weights() -> None:
    observed = {"control": 5100, "a": 2400, "b": 2500}
    weights = {"control": 0.5, "a": 0.25, "b": 0.25}
    r = srm_test(observed, weights)
    ref = sps.chisquare([5100, 2400, 2500], [5000, 2500, 2500])
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.status == "ok"


def test_configured_weights_not_equal_split() -> None:
    observed = {"control": 9000, "t": 1000}
    assert srm_test(observed, {"control": 9, "t": 1}).status == "ok"
    assert srm_test(observed).status == "mismatch"


def test_min_count_gate() -> None:
    r = srm_test({"control": 40, "t": 10})
    assert r.status == "insufficient_data"
    assert r.p_value < 0.001
    assert math.isnan(srm_test({"control": 0, "t": 0}).p_value)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (({"control": 1},), "at least 2"),
        (({"control": 1, "t": 1}, {"control": 1}), "weights must name"),
        (({"control": 1, "t": 1}, {"control": 1, "t": 0}), "weights must all"),
        (({"control": 1, "t": 1}, None, 2.0), "threshold"),
    ],
)
def test_bad_arguments(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        srm_test(*args)  # type: ignore[arg-type]

"""Allocation periods: SRM per period and combined, stratified effects, identity without ramps."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import splitlab
from splitlab.core.stats.comparison import ArmEstimate
from splitlab.core.stats.periods import (
    _mixture_test,
    allocation_strata,
    combine_estimates,
    period_srm_test,
)
from splitlab.core.stats.srm import srm_test

RAMP = {0: {"control": 50, "treatment": 50}, 1: {"control": 20, "treatment": 80}}
VARIANTS = ["control", "treatment"]


def ramp_frame(seed: int, n: tuple[int, int] = (4000, 4000), drift: float = 2.0) -> pd.DataFrame:
    """A 50/50 then 20/80 experiment whose baseline rises by ``drift`` in the second period;
    true effect 0.1 on ``y``, none on the 0/1 ``converted``; ``x`` a pre-period covariate."""
    rng = np.random.default_rng(seed)
    period = np.r_[np.zeros(n[0], int), np.ones(n[1], int)]
    share = np.where(period == 0, 0.5, 0.8)
    treated = rng.random(period.size) < share
    x = rng.normal(0, 1, period.size)
    y = 1.0 + drift * period + 0.1 * treated + x + rng.normal(0, 1, period.size)
    converted = (rng.random(period.size) < 0.2 + 0.2 * period).astype(int)
    return pd.DataFrame(
        {
            "variant": np.where(treated, "treatment", "control"),
            "period": period,
            "y": y,
            "x": x,
            "converted": converted,
            "clicks": rng.poisson(3 + period, period.size) + 1,
        }
    )


def strip(d: dict[str, Any]) -> dict[str, Any]:
    """``to_dict`` without the timing of the CUPAC fit (the only field that varies by run)."""
    for metric in d["metrics"].values():
        if metric["cupac"] is not None:
            metric["cupac"]["elapsed_s"] = 0
    return d


# --- identity: one split means exactly today's numbers ----------------------------------------
@pytest.mark.parametrize("sequential", [False, True])
def test_periods_with_one_split_give_exactly_the_pooled_numbers(sequential: bool) -> None:
    data = ramp_frame(1)
    rng = np.random.default_rng(5)
    data["variant"] = np.where(rng.random(len(data)) < 0.5, "treatment", "control")
    same = {0: {"control": 1, "treatment": 1}, 1: {"control": 50, "treatment": 50}}
    for method in ("none", "cuped", "regression", "cupac", "auto"):
        options: dict[str, Any] = {
            "metrics": ["y", "converted"],
            "covariates": ["x"],
            "weights": [50, 50],
            "sequential": sequential,
            "cupac_folds": 3,
            "cupac_models": ("linear",),
        }
        if method in ("none", "auto"):
            options["ratio_metrics"] = {"y_per_click": ("y", "clicks")}
        with_periods = splitlab.analyze(
            data, method=method, period_col="period", period_weights=same, **options
        ).to_dict()
        pooled = splitlab.analyze(data, method=method, **options).to_dict()
        assert with_periods.pop("strata") == 1
        assert [p["stratum"] for p in with_periods.pop("periods")] == [0, 0]
        del with_periods["srm"]["expected"]
        assert strip(with_periods) == strip(pooled), method


# --- effects ----------------------------------------------------------------------------------
def test_stratified_none_equals_the_hand_computed_post_stratified_estimate() -> None:
    data = ramp_frame(2)
    result = splitlab.analyze(
        data, metrics=["y"], method="none", period_col="period", period_weights=RAMP
    )
    c = result.metrics["y"].comparisons["treatment"].comparison
    effect, variance, total = 0.0, 0.0, len(data)
    for _, part in data.groupby("period"):
        w = len(part) / total
        t, k = part.y[part.variant == "treatment"], part.y[part.variant == "control"]
        effect += w * (t.mean() - k.mean())
        variance += w * w * (t.var(ddof=1) / len(t) + k.var(ddof=1) / len(k))
    assert c.effect == pytest.approx(effect, rel=1e-12)
    assert c.se == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert result.metrics["y"].comparisons["treatment"].comparison.n_treatment == int(
        (data.variant == "treatment").sum()
    )


def test_pooled_estimate_is_biased_by_the_ramp_and_the_stratified_one_is_not() -> None:
    data = ramp_frame(3, n=(20_000, 20_000))
    for method in ("none", "cuped", "regression", "cupac"):
        pooled = splitlab.analyze(
            data, metrics=["y"], covariates=["x"], method=method, cupac_folds=3
        ).metrics["y"]
        stratified = splitlab.analyze(
            data,
            metrics=["y"],
            covariates=["x"],
            method=method,
            cupac_folds=3,
            period_col="period",
            period_weights=RAMP,
        ).metrics["y"]
        p = pooled.comparisons["treatment"].comparison
        s = stratified.comparisons["treatment"].comparison
        # Treated units come more from the later (higher) period: the pooled effect absorbs
        # drift x (share of treated from period 1 - share of control from period 1) ~ 0.62.
        assert p.effect > 0.5, method
        assert s.ci_lower < 0.1 < s.ci_upper, method
        assert abs(s.effect - 0.1) < 4 * s.se, method


def test_stratified_proportion_keeps_the_pooled_null_variance_per_stratum() -> None:
    data = ramp_frame(4)
    c = (
        splitlab.analyze(
            data, metrics=["converted"], method="none", period_col="period", period_weights=RAMP
        )
        .metrics["converted"]
        .comparisons["treatment"]
        .comparison
    )
    null_variance, effect = 0.0, 0.0
    for _, part in data.groupby("period"):
        w = len(part) / len(data)
        t = part.converted[part.variant == "treatment"]
        k = part.converted[part.variant == "control"]
        pooled = part.converted.mean()
        effect += w * (t.mean() - k.mean())
        null_variance += w * w * pooled * (1 - pooled) * (1 / len(t) + 1 / len(k))
    assert c.effect == pytest.approx(effect, rel=1e-12)
    z = effect / math.sqrt(null_variance)
    assert c.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)


def test_sequential_and_ratio_metrics_work_on_strata() -> None:
    data = ramp_frame(6)
    result = splitlab.analyze(
        data,
        metrics=["y"],
        ratio_metrics={"y_per_click": ("y", "clicks")},
        method="auto",
        sequential=True,
        period_col="period",
        period_weights=RAMP,
    )
    fixed = splitlab.analyze(
        data,
        metrics=["y"],
        ratio_metrics={"y_per_click": ("y", "clicks")},
        method="auto",
        period_col="period",
        period_weights=RAMP,
    )
    for name in ("y", "y_per_click"):
        s = result.metrics[name].comparisons["treatment"].comparison
        f = fixed.metrics[name].comparisons["treatment"].comparison
        assert s.status == "ok"
        assert s.effect == f.effect
        assert s.ci_upper - s.ci_lower > f.ci_upper - f.ci_lower


def test_a_stratum_without_one_arm_is_left_out_of_that_comparison() -> None:
    data = ramp_frame(7)
    # Period 1 gives no unit to control (weight 0): its units say nothing about the contrast.
    data.loc[data.period == 1, "variant"] = "treatment"
    weights = {0: {"control": 1, "treatment": 1}, 1: {"control": 0, "treatment": 1}}
    result = splitlab.analyze(
        data, metrics=["y"], method="none", period_col="period", period_weights=weights
    )
    first = data[data.period == 0]
    c = result.metrics["y"].comparisons["treatment"].comparison
    by_variant = first.groupby("variant").y.mean()
    expected = by_variant["treatment"] - by_variant["control"]
    assert c.effect == pytest.approx(expected, rel=1e-12)
    assert result.srm.status == "ok"


def test_combine_estimates_degrees_of_freedom_are_satterthwaite_over_the_parts() -> None:
    a = ArmEstimate(10, 1.0, 0.2, 9.0, 1.0, 0.2)
    b = ArmEstimate(30, 2.0, 0.1, 29.0, 2.0, 0.1)
    combined = combine_estimates([a, b], [0.25, 0.75])
    parts = [0.25**2 * 0.2, 0.75**2 * 0.1]
    assert combined.mean == pytest.approx(0.25 * 1.0 + 0.75 * 2.0)
    assert combined.variance == pytest.approx(sum(parts))
    assert combined.dof == pytest.approx(sum(parts) ** 2 / (parts[0] ** 2 / 9 + parts[1] ** 2 / 29))
    assert combined.n == 40


def test_strata_group_periods_with_the_same_normalized_split() -> None:
    weights = {
        0: {"control": 50, "treatment": 50},
        1: {"control": 20, "treatment": 80},
        2: {"control": 1, "treatment": 1},
    }
    assert allocation_strata([0, 1, 2], weights, VARIANTS) == [[0, 2], [1]]


def test_argument_errors_name_the_argument() -> None:
    data = ramp_frame(8)
    with pytest.raises(ValueError, match="period_weights has no split for period"):
        splitlab.analyze(data, metrics=["y"], period_col="period", period_weights={0: RAMP[0]})
    with pytest.raises(ValueError, match="period_col"):
        splitlab.analyze(data, metrics=["y"], period_col="nope")
    data["period"] = data["period"].astype(float)
    data.loc[0, "period"] = np.nan
    with pytest.raises(ValueError, match="period_col has missing values"):
        splitlab.analyze(data, metrics=["y"], period_col="period")


# --- SRM --------------------------------------------------------------------------------------
def test_issue_reproduction_is_no_mismatch_per_period_but_is_one_pooled() -> None:
    observed = {0: {"control": 992, "treatment": 1008}, 1: {"control": 397, "treatment": 1603}}
    result = period_srm_test(observed, RAMP, VARIANTS)
    assert result.combined.status == "ok"
    assert result.combined.expected == pytest.approx({"control": 1400.0, "treatment": 2600.0})
    assert [p.srm.status for p in result.periods] == ["ok", "ok"]
    pooled = srm_test({"control": 1389, "treatment": 2611}, {"control": 20, "treatment": 80})
    assert pooled.status == "mismatch"
    assert pooled.p_value < 1e-100  # the issue's p = 6.7e-120


def test_a_real_mismatch_in_the_second_period_is_still_detected() -> None:
    # 10% of the treatment units of the 20,000-unit second period are lost.
    observed = {0: {"control": 992, "treatment": 1008}, 1: {"control": 4000, "treatment": 14400}}
    result = period_srm_test(observed, RAMP, VARIANTS)
    assert result.combined.status == "mismatch"
    assert result.periods[1].srm.status == "mismatch"
    assert result.periods[0].srm.status == "ok"


def test_one_split_is_exactly_the_pooled_chi_square() -> None:
    observed = {0: {"a": 500, "b": 260, "c": 240}, 3: {"a": 1000, "b": 480, "c": 520}}
    weights = {0: {"a": 2, "b": 1, "c": 1}, 3: {"a": 0.5, "b": 0.25, "c": 0.25}}
    result = period_srm_test(observed, weights, ["a", "b", "c"])
    pooled = srm_test({"a": 1500, "b": 740, "c": 760}, {"a": 2, "b": 1, "c": 1})
    assert result.combined == pooled


def test_mixture_statistic_of_one_period_is_pearsons() -> None:
    counts = {0: {"a": 5100, "b": 2400, "c": 2500}}
    split = {0: (0.5, 0.25, 0.25)}
    got = _mixture_test(counts, split, ["a", "b", "c"], 0.001, 100)
    ref = sps.chisquare([5100, 2400, 2500], [5000, 2500, 2500])
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10)


def test_mixture_test_is_calibrated_under_ramps() -> None:
    rng = np.random.default_rng(0)
    splits = [(0.5, 0.5), (0.2, 0.8), (0.1, 0.9)]
    p_values = []
    for _ in range(4000):
        counts = {}
        for p, split in enumerate(splits):
            n = 1000 * (p + 1)
            drawn = rng.multinomial(n, split)
            counts[p] = {"control": int(drawn[0]), "treatment": int(drawn[1])}
        weights = {p: dict(zip(VARIANTS, s, strict=True)) for p, s in enumerate(splits)}
        p_values.append(period_srm_test(counts, weights, VARIANTS).combined.p_value)
    p_values_array = np.asarray(p_values)
    # Uniform under the null: 5% and 1% rejection rates within 3.5 binomial standard errors.
    for level in (0.05, 0.01):
        rate = float((p_values_array < level).mean())
        assert abs(rate - level) < 3.5 * math.sqrt(level * (1 - level) / len(p_values)), level


def test_units_of_a_variant_without_weight_are_a_mismatch() -> None:
    observed = {0: {"control": 600, "treatment": 600}, 1: {"control": 30, "treatment": 900}}
    weights = {0: {"control": 1, "treatment": 1}, 1: {"control": 0, "treatment": 1}}
    result = period_srm_test(observed, weights, VARIANTS)
    assert result.periods[1].srm.status == "mismatch"
    assert result.combined.status == "mismatch"
    clean = {0: observed[0], 1: {"control": 0, "treatment": 900}}
    assert period_srm_test(clean, weights, VARIANTS).combined.status == "ok"


def test_a_period_without_weight_for_a_variant_still_lists_its_units() -> None:
    data = ramp_frame(9)
    data.loc[data.period == 1, "variant"] = "treatment"
    weights = {0: {"control": 1, "treatment": 1}, 1: {"control": 0, "treatment": 1}}
    periods = splitlab.analyze(
        data, metrics=["y"], method="none", period_col="period", period_weights=weights
    ).to_dict()["periods"]
    assert periods[1]["units"] == {"control": 0, "treatment": 4000}
    assert periods[1]["expected"] == {"control": 0.0, "treatment": 4000.0}
    assert periods[1]["weights"] == {"control": 0.0, "treatment": 1.0}

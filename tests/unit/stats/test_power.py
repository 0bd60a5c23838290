"""Power and sample size against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    samplesize_proportions_2indep_onetail,
)

from splitlab.core.stats.power import mde, power_at, runtime_days, sample_size

SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_means_match_normal_ind_power(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    sd, delta = rng.uniform(0.5, 5), rng.uniform(0.05, 1.0)
    ratio, alpha, power = rng.uniform(0.5, 3), rng.uniform(0.01, 0.1), rng.uniform(0.6, 0.95)
    ours = sample_size(
        10.0, delta, sd=sd, alpha=alpha, power=power, alternative=alternative, treatment_ratio=ratio
    )
    ref = NormalIndPower().solve_power(
        effect_size=delta / sd,
        alpha=alpha,
        power=power,
        ratio=ratio,
        alternative=SM_ALT[alternative],
    )
    assert ours.n_control_exact == pytest.approx(ref, rel=1e-6)
    assert ours.n_control == math.ceil(ref - 1e-9)
    assert ours.n_treatment == math.ceil(ref * ratio - 1e-9)
    got = power_at(
        ours.n_control_exact,
        10.0,
        delta,
        sd=sd,
        alpha=alpha,
        alternative=alternative,
        treatment_ratio=ratio,
    )
    assert got == pytest.approx(power, rel=1e-8)
    back = mde(
        ours.n_control_exact,
        10.0,
        sd=sd,
        alpha=alpha,
        power=power,
        alternative=alternative,
        treatment_ratio=ratio,
    )
    assert back.mde_absolute == pytest.approx(delta, rel=1e-7)


@pytest.mark.parametrize("seed", range(15))
def test_proportions_match_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    p, rel = rng.uniform(0.02, 0.5), rng.uniform(0.03, 0.3)
    ratio = rng.uniform(0.5, 2)
    ours = sample_size(
        p, rel, metric_type="proportion", mde_type="relative", power=0.8, treatment_ratio=ratio
    )
    # statsmodels: sample 1 is the treatment (nobs1), ratio = nobs2 / nobs1.
    n_treatment = samplesize_proportions_2indep_onetail(
        p * rel, p, 0.8, ratio=1 / ratio, alpha=0.05
    )
    assert ours.n_control_exact * ratio == pytest.approx(n_treatment, rel=1e-4)
    sm_power = power_proportions_2indep(p * rel, p, 500, ratio=1 / ratio, return_results=False)
    assert power_at(
        500 / ratio, p, p * rel, metric_type="proportion", treatment_ratio=ratio
    ) == pytest.approx(sm_power, rel=1e-9)


def test_issue_example_and_options() -> None:
    base = sample_size(0.07, 0.04, metric_type="proportion", mde_type="relative", power=0.9)
    assert base.n_per_variant == base.n_control == base.n_treatment
    assert base.total_n == 2 * base.n_per_variant
    cc = sample_size(
        0.07,
        0.04,
        metric_type="proportion",
        mde_type="relative",
        power=0.9,
        continuity_correction=True,
    )
    assert cc.n_control > base.n_control
    reduced = sample_size(
        0.07, 0.04, metric_type="proportion", mde_type="relative", power=0.9, variance_reduction=0.5
    )
    assert reduced.n_control == pytest.approx(base.n_control * 0.5, rel=1e-3)
    three = sample_size(
        0.07,
        0.04,
        metric_type="proportion",
        mde_type="relative",
        power=0.9,
        n_variants=3,
        daily_units=10_000,
    )
    assert three.total_n == 3 * base.n_control
    assert three.runtime_days == math.ceil(three.total_n / 10_000)


def test_fleiss_continuity_correction_formula() -> None:
    plain = sample_size(0.1, 0.05, metric_type="proportion")
    cc = sample_size(0.1, 0.05, metric_type="proportion", continuity_correction=True)
    n = plain.n_control_exact
    assert cc.n_control_exact == pytest.approx(n / 4 * (1 + math.sqrt(1 + 4 / (n * 0.05))) ** 2)


def test_mde_for_proportions_is_consistent() -> None:
    result = mde(20_000, 0.1, metric_type="proportion", power=0.8)
    n = sample_size(0.1, result.mde_absolute, metric_type="proportion", power=0.8)
    assert n.n_control_exact == pytest.approx(20_000, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline": 1.5, "mde": 0.1, "metric_type": "proportion"}, "baseline"),
        ({"baseline": 1.0, "mde": 0.1}, "sd"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "alpha": 2}, "alpha"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "power": 1}, "power"),
        ({"baseline": 1.0, "mde": 0.0, "sd": 1}, "mde"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "mde_type": "pct"}, "mde_type"),
        ({"baseline": 0.5, "mde": 0.6, "metric_type": "proportion"}, "mde moves"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "metric_type": "count"}, "metric_type"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "continuity_correction": True}, "continuity"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "variance_reduction": 1.0}, "variance_reduction"),
        ({"baseline": 1.0, "mde": 0.1, "sd": 1, "n_variants": 1}, "n_variants"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sample_size(**kwargs)  # type: ignore[arg-type]


def test_runtime_days() -> None:
    assert runtime_days(1000, 300) == 4.0
    with pytest.raises(ValueError, match="daily_units"):
        runtime_days(1000, 0)
    with pytest.raises(ValueError, match="n_control"):
        mde(1, 0.1, metric_type="proportion")

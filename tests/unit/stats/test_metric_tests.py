"""The tests a metric can name, against scipy and statsmodels (golden), and their laws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportions_chisquare,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

import splitlab
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.metric_tests import (
    TESTS,
    bootstrap_quantile,
    check_quantile,
    check_test,
    chi_square,
    cohens_d,
    hodges_lehmann,
    kth_difference,
    mann_whitney_test,
    welch_test,
    z_test,
)
from splitlab.core.stats.sufficient import Moments


def _moments(values: np.ndarray) -> Moments:
    return Moments.from_arrays(values.reshape(-1, 1))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_matches_statsmodels(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    c = rng.lognormal(0, 1, int(rng.integers(30, 400)))
    t = rng.lognormal(0.1, 1.3, int(rng.integers(30, 400)))
    ours = welch_test(_moments(c), _moments(t), 0.05, alternative)
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    stat, p, _ = ttest_ind(t, c, alternative=sm_alt, usevar="unequal")
    low, high = CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(
        alpha=0.05, alternative=sm_alt, usevar="unequal"
    )
    assert ours.test == "welch"
    assert ours.statistic == pytest.approx(stat, rel=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-9)
    assert ours.effect == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    if alternative != "less":
        assert ours.ci_lower == pytest.approx(low, rel=1e-9)
    if alternative != "greater":
        assert ours.ci_upper == pytest.approx(high, rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_z_matches_statsmodels(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    n_c, n_t = int(rng.integers(200, 2000)), int(rng.integers(200, 2000))
    c = (rng.random(n_c) < 0.07).astype(float)
    t = (rng.random(n_t) < 0.09).astype(float)
    ours = z_test(_moments(c), _moments(t), 0.05, alternative)
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    stat, p = proportions_ztest([t.sum(), c.sum()], [n_t, n_c], alternative=sm_alt)
    low, high = confint_proportions_2indep(
        t.sum(), n_t, c.sum(), n_c, method="wald", compare="diff", alpha=0.05
    )
    assert ours.statistic == pytest.approx(stat, rel=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-9)
    assert ours.effect == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    if alternative == "two-sided":
        assert (ours.ci_lower, ours.ci_upper) == pytest.approx((low, high), rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_chi2_matches_statsmodels_and_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = (rng.random(int(rng.integers(100, 3000))) < 0.1).astype(float)
    t = (rng.random(int(rng.integers(100, 3000))) < 0.12).astype(float)
    ours = chi_square(_moments(c), _moments(t))
    stat, p, _ = proportions_chisquare([c.sum(), t.sum()], [c.size, t.size])
    table = [[c.sum(), c.size - c.sum()], [t.sum(), t.size - t.sum()]]
    ref = sps.chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(stat, rel=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    # two-sided chi-square of a 2x2 table is the square of the pooled z
    z = z_test(_moments(c), _moments(t))
    assert ours.statistic == pytest.approx(z.statistic**2, rel=1e-9)


def test_chi2_refuses_a_one_sided_alternative() -> None:
    m = _moments(np.array([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ArgumentError, match="use test 'z'") as info:
        chi_square(m, m, alternative="greater")
    assert info.value.argument == "tests"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_matches_scipy(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    c = np.round(rng.exponential(1.0, int(rng.integers(20, 300))), 1)  # ties on purpose
    t = np.round(rng.exponential(1.3, int(rng.integers(20, 300))), 1)
    ours = mann_whitney_test(c, t, 0.05, alternative)
    ref = sps.mannwhitneyu(t, c, alternative=alternative, method="asymptotic")
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    pairs = np.subtract.outer(t, c)
    superiority = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    assert ours.prob_superiority == pytest.approx(superiority, rel=1e-12)
    assert ours.effect == pytest.approx(float(np.median(pairs)), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_hodges_lehmann_interval_is_the_walsh_order_statistics(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 1, int(rng.integers(10, 120)))
    t = rng.normal(0.3, 1, int(rng.integers(10, 120)))
    shift, lower, upper = hodges_lehmann(c, t, alpha=0.1)
    pairs = np.sort(np.subtract.outer(t, c).reshape(-1))
    nm = pairs.size
    n = t.size + c.size
    k = round(nm / 2 - sps.norm.ppf(0.95) * math.sqrt(nm * (n + 1) / 12))  # no ties here
    assert shift == pytest.approx(np.median(pairs), abs=1e-12)
    assert lower == pairs[k - 1]
    assert upper == pairs[nm - k]
    _, one_lower, one_upper = hodges_lehmann(c, t, alpha=0.05, alternative="greater")
    assert one_upper == math.inf
    assert one_lower == pytest.approx(lower)  # z_0.95 both ways


@pytest.mark.parametrize("seed", range(4))
def test_kth_difference_by_bisection_equals_the_sorted_differences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = rng.gamma(2.0, 3.0, 300)
    t = np.round(rng.gamma(2.0, 3.5, 250), 0 if seed % 2 else 3)  # ties on odd seeds
    pairs = np.sort(np.subtract.outer(t, c).reshape(-1))
    for k in (1, 2, 100, pairs.size // 2, pairs.size // 2 + 1, pairs.size - 1, pairs.size):
        assert kth_difference(t, c, k, exact_pairs=0) == pytest.approx(pairs[k - 1], abs=1e-9)
        assert kth_difference(t, c, k) == pairs[k - 1]


def test_kth_difference_refuses_a_rank_outside_the_pairs() -> None:
    with pytest.raises(ArgumentError, match="k must lie in"):
        kth_difference([1.0], [2.0], 2)


@pytest.mark.parametrize("method", ["bca", "percentile"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_bootstrap_matches_scipy_bootstrap(method: str, alternative: str) -> None:
    rng = np.random.default_rng(3)
    c, t = rng.lognormal(0, 1, 150), rng.lognormal(0.2, 1, 170)
    ours = bootstrap_quantile(
        c, t, 0.75, method, n_resamples=500, alpha=0.1, alternative=alternative, random_state=7
    )

    def stat(c_: np.ndarray, t_: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(t_, 0.75, axis=axis) - np.quantile(c_, 0.75, axis=axis)

    ref = sps.bootstrap(
        (c, t),
        stat,
        n_resamples=500,
        method="BCa" if method == "bca" else "percentile",
        confidence_level=0.9,
        alternative=alternative,
        rng=np.random.default_rng(7),
    )
    assert ours.effect == pytest.approx(np.quantile(t, 0.75) - np.quantile(c, 0.75), rel=1e-12)
    assert ours.ci_lower == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    if alternative == "two-sided":
        assert ours.ci_upper == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    else:
        assert ours.ci_upper == math.inf
    draws = ref.bootstrap_distribution
    tail = ((draws <= 0).sum() + 1) / (draws.size + 1)
    high = ((draws >= 0).sum() + 1) / (draws.size + 1)
    expected_p = min(1.0, 2 * min(tail, high)) if alternative == "two-sided" else tail
    assert ours.p_value == pytest.approx(expected_p, abs=1e-12)
    assert ours.quantile == 0.75
    assert ours.n_resamples == 500


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_bootstrap_p_value_is_never_zero(method: str) -> None:
    """Arms far apart: no bootstrap draw crosses 0. The report showed p_value 0.0e+00 (the
    share of draws), which no test of 2,000 resamples can resolve; (0 + 1) / (B + 1) now."""
    rng = np.random.default_rng(2)
    c, t = rng.normal(0, 1, 200), rng.normal(5, 1, 200)
    two = bootstrap_quantile(c, t, 0.5, method, n_resamples=999, random_state=0)
    assert two.p_value == pytest.approx(2 / 1000, rel=1e-12)
    one = bootstrap_quantile(
        c, t, 0.5, method, n_resamples=999, alternative="greater", random_state=0
    )
    assert one.p_value == pytest.approx(1 / 1000, rel=1e-12)


def test_bootstrap_is_reproducible_given_seed_and_order() -> None:
    rng = np.random.default_rng(1)
    c, t = rng.normal(0, 1, 120), rng.normal(0, 1, 130)
    first = bootstrap_quantile(c, t, n_resamples=300, random_state=11)
    assert bootstrap_quantile(c, t, n_resamples=300, random_state=11) == first
    assert bootstrap_quantile(c, t, n_resamples=300, random_state=12) != first


def test_bootstrap_median_interval_is_near_the_normal_theory_one() -> None:
    rng = np.random.default_rng(5)
    c, t = rng.normal(0, 1, 2000), rng.normal(0.1, 1, 2000)
    boot = bootstrap_quantile(c, t, 0.5, "bca", n_resamples=1000, random_state=0)
    se = math.sqrt(2 * math.pi / 4 / 2000 * 2)  # var(median) = pi sigma^2 / (2n) per arm
    assert boot.ci_upper - boot.ci_lower == pytest.approx(2 * 1.96 * se, rel=0.2)


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.1, 1.5])
def test_a_quantile_outside_the_unit_interval_is_refused(quantile: float) -> None:
    with pytest.raises(ArgumentError, match=r"quantile must lie in \(0, 1\)") as info:
        bootstrap_quantile([1.0, 2.0], [1.0, 2.0], quantile)
    assert info.value.argument == "quantiles"
    with pytest.raises(ArgumentError):
        check_quantile(quantile)


def test_test_names_are_a_closed_set() -> None:
    assert TESTS == ("welch", "z", "chi2", "mann_whitney", "bootstrap_bca", "bootstrap_percentile")
    assert check_test("mann_whitney") == "mann_whitney"
    with pytest.raises(ArgumentError, match="test must be one of"):
        check_test("wilcoxon")


def test_cohens_d_uses_the_pooled_standard_deviation() -> None:
    c = np.array([1.0, 2.0, 3.0, 4.0])
    t = np.array([3.0, 5.0, 7.0])
    pooled = math.sqrt((3 * c.var(ddof=1) + 2 * t.var(ddof=1)) / 5)
    assert cohens_d(_moments(c), _moments(t)) == pytest.approx((5.0 - 2.5) / pooled, rel=1e-12)
    assert cohens_d(_moments(c), _moments(t)) == pytest.approx(2.5 / math.sqrt(2.6), rel=1e-12)
    assert math.isnan(cohens_d(_moments(c[:1]), _moments(t)))
    assert math.isnan(cohens_d(_moments(np.ones(3)), _moments(np.ones(4))))


def test_cohens_d_is_nan_not_zero_when_the_sums_of_squares_overflow() -> None:
    """Spend near 1e300 (a unit bug upstream): Welch said 'degenerate: non-finite estimate'
    but the report showed Cohen's d 0.0, an effect over an infinite SD."""
    c = np.array([1.0, 2.0, 3.0, 4.0]) * 1e300
    t = np.array([3.0, 5.0, 7.0]) * 1e300
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the case under test
        assert math.isnan(cohens_d(_moments(c), _moments(t)))
        data = pd.DataFrame({"variant": ["control"] * 4 + ["treatment"] * 3, "spend": [*c, *t]})
        result = splitlab.analyze(data, metrics=["spend"], method="none").to_dict()
    assert result["metrics"]["spend"]["comparisons"]["treatment"]["cohens_d"] is None


def test_degenerate_inputs_give_nan_and_a_status() -> None:
    assert mann_whitney_test([1.0, 1.0], [1.0, 1.0]).status.startswith("degenerate")
    assert mann_whitney_test([], [1.0]).status.startswith("insufficient")
    assert bootstrap_quantile([1.0], [1.0, 2.0], n_resamples=100).status.startswith("insuff")
    zeros = _moments(np.zeros(10))
    assert chi_square(zeros, zeros).status != "ok"
    assert math.isnan(chi_square(zeros, zeros).p_value)


def test_bca_of_an_integer_median_is_degenerate_with_a_status_and_percentile_works() -> None:
    rng = np.random.default_rng(1)
    c, t = rng.poisson(3, 300).astype(float), rng.poisson(3, 250).astype(float)
    bca = bootstrap_quantile(c, t, 0.5, "bca", n_resamples=500)
    assert bca.status.startswith("degenerate: the BCa interval is undefined")
    assert math.isnan(bca.ci_lower)
    assert math.isnan(bca.ci_upper)
    percentile = bootstrap_quantile(c, t, 0.5, "percentile", n_resamples=500)
    assert percentile.status == "ok"
    assert percentile.ci_lower <= percentile.effect <= percentile.ci_upper

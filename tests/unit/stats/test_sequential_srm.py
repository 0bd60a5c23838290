"""Sequential SRM (Dirichlet-multinomial mixture SPRT): golden values, periods, validity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from splitlab.core.errors import ArgumentError
from splitlab.core.stats.sequential_srm import (
    DEFAULT_CONCENTRATIONS,
    log_bayes_factor,
    period_sequential_srm_test,
    running_p_values,
    sequential_srm_test,
)


def test_hand_computed_two_units() -> None:
    # alpha = (1, 1): the Dirichlet-multinomial of (2, 0) is 1/3 (uniform over 0, 1, 2 units
    # in the first arm); the multinomial at 50/50 is 1/4: BF = 4/3, p = 3/4.
    r = sequential_srm_test({"control": 2, "t": 0}, concentrations=2.0, min_count=0)
    assert r.log_bayes_factor == pytest.approx(math.log(4.0 / 3.0), rel=1e-12)
    assert r.p_value == pytest.approx(0.75, rel=1e-12)


@pytest.mark.parametrize(
    ("counts", "theta", "concentration"),
    [
        ([5100, 4900], [0.5, 0.5], 10_000.0),
        ([5100, 2400, 2500], [0.5, 0.25, 0.25], 1000.0),
        ([812, 190], [0.8, 0.2], 50.0),
        ([40, 61, 33, 20], [0.3, 0.3, 0.2, 0.2], 10.0),
    ],
)
def test_matches_scipy_dirichlet_multinomial_over_multinomial(
    counts: list[int], theta: list[float], concentration: float
) -> None:
    n = sum(counts)
    alpha = concentration * np.asarray(theta)
    reference = sps.dirichlet_multinomial.logpmf(counts, alpha, n) - sps.multinomial.logpmf(
        counts, n, theta
    )
    assert float(log_bayes_factor(counts, theta, concentration)) == pytest.approx(
        reference, rel=1e-9, abs=1e-9
    )


def test_the_default_mixes_its_concentrations_with_equal_weights() -> None:
    counts, theta = [5230, 4770], [0.5, 0.5]
    n = sum(counts)
    bayes_factors = [
        math.exp(
            sps.dirichlet_multinomial.logpmf(counts, c * np.asarray(theta), n)
            - sps.multinomial.logpmf(counts, n, theta)
        )
        for c in DEFAULT_CONCENTRATIONS
    ]
    expected = math.log(sum(bayes_factors) / len(bayes_factors))
    assert float(log_bayes_factor(counts, theta)) == pytest.approx(expected, rel=1e-9)
    r = sequential_srm_test({"control": counts[0], "t": counts[1]})
    assert r.log_bayes_factor == pytest.approx(expected, rel=1e-9)
    assert r.concentrations == DEFAULT_CONCENTRATIONS


@pytest.mark.parametrize(
    ("share", "units", "single"),
    # The first number of units (at these shares) the default flags at 0.001, and what one
    # concentration of 10,000 needs: an arm that gets nothing is flagged at the 100-unit gate.
    [(1.0, 100, 380), (0.6, 536, 2051), (0.55, 2010, 4541)],
)
def test_the_mixture_flags_gross_mismatches_early(share: float, units: int, single: int) -> None:
    def status(n: int, concentrations: float | tuple[float, ...]) -> str:
        first = round(share * n)
        observed = {"control": first, "t": n - first}
        return sequential_srm_test(observed, concentrations=concentrations).status

    assert status(units, DEFAULT_CONCENTRATIONS) == "mismatch"
    assert status(units - 1, DEFAULT_CONCENTRATIONS) != "mismatch"
    assert status(single, 10_000.0) == "mismatch"
    assert status(single - 1, 10_000.0) != "mismatch"


def test_batches_equal_units_one_by_one() -> None:
    # The Bayes factor depends on the cumulative counts only, not on how they arrived.
    rng = np.random.default_rng(1)
    units = rng.choice(3, size=500, p=[0.5, 0.3, 0.2])
    one_hot = np.eye(3)[units]
    cumulative = one_hot.cumsum(axis=0)
    theta = [0.5, 0.3, 0.2]
    sequential = log_bayes_factor(cumulative, theta, 100.0)
    # Update one unit at a time with the posterior predictive (the paper's recursion).
    alpha = 100.0 * np.asarray(theta)
    log_bf = 0.0
    for i, u in enumerate(units):
        counts_before = cumulative[i] - one_hot[i]
        predictive = (alpha[u] + counts_before[u]) / (100.0 + counts_before.sum())
        log_bf += math.log(predictive) - math.log(theta[u])
        assert sequential[i] == pytest.approx(log_bf, abs=1e-9)


def test_running_p_values_are_monotone_and_valid_under_the_null() -> None:
    rng = np.random.default_rng(7)
    theta = np.array([0.5, 0.5])
    batches = rng.multinomial(50, theta, size=(400, 200))
    p = running_p_values(batches.cumsum(axis=1), theta)
    assert np.all(np.diff(p, axis=-1) <= 0)
    # 400 experiments, 200 looks each: the always-valid test keeps P(ever < 0.05) <= 0.05.
    assert float((p[:, -1] < 0.05).mean()) <= 0.05


def test_detects_a_large_mismatch_and_not_a_fair_split() -> None:
    assert sequential_srm_test({"control": 5000, "t": 4400}).status == "mismatch"
    fair = sequential_srm_test({"control": 5010, "t": 4990})
    assert fair.status == "ok"
    assert fair.p_value == 1.0


def test_weights_are_the_null() -> None:
    observed = {"control": 9000, "t": 1000}
    assert sequential_srm_test(observed, {"control": 9, "t": 1}).status == "ok"
    assert sequential_srm_test(observed).status == "mismatch"


def test_periods_multiply_bayes_factors() -> None:
    counts = {0: {"c": 992, "t": 1008}, 1: {"c": 397, "t": 1603}}
    weights = {0: {"c": 50, "t": 50}, 1: {"c": 20, "t": 80}}
    single = period_sequential_srm_test(counts, weights, ["c", "t"], concentrations=1000.0)
    first = sequential_srm_test(counts[0], weights[0], concentrations=1000.0)
    second = sequential_srm_test(counts[1], weights[1], concentrations=1000.0)
    assert single.log_bayes_factor == pytest.approx(
        first.log_bayes_factor + second.log_bayes_factor, rel=1e-12
    )
    # Several concentrations: each one's product over the periods, then the mixture.
    r = period_sequential_srm_test(counts, weights, ["c", "t"])
    products = [
        period_sequential_srm_test(counts, weights, ["c", "t"], concentrations=c).log_bayes_factor
        for c in DEFAULT_CONCENTRATIONS
    ]
    mixture = math.log(sum(math.exp(v) for v in products) / len(products))
    assert r.log_bayes_factor == pytest.approx(mixture, rel=1e-12)
    assert r.status == "ok"
    assert r.observed == {"c": 1389, "t": 2611}
    assert r.expected_weights["t"] == pytest.approx((1000 + 1600) / 4000)
    # The pooled counts against the latest split would be a mismatch.
    assert sequential_srm_test(r.observed, {"c": 20, "t": 80}).status == "mismatch"


def test_units_in_a_variant_without_weight_are_a_mismatch() -> None:
    counts = {0: {"c": 500, "t": 0}, 1: {"c": 300, "t": 300}}
    weights = {0: {"c": 1, "t": 0}, 1: {"c": 1, "t": 0}}
    r = period_sequential_srm_test(counts, weights, ["c", "t"])
    assert r.p_value == 0.0
    assert r.status == "mismatch"
    ok = period_sequential_srm_test({0: {"c": 500, "t": 0}}, {0: {"c": 1, "t": 0}}, ["c", "t"])
    assert ok.p_value == 1.0


def test_min_count_and_empty() -> None:
    assert sequential_srm_test({"control": 40, "t": 0}).status == "insufficient_data"
    empty = sequential_srm_test({"control": 0, "t": 0})
    assert empty.status == "insufficient_data"
    assert empty.p_value == 1.0
    assert empty.expected_weights == {"control": 0.5, "t": 0.5}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"observed": {"control": 1}}, "observed"),
        ({"observed": {"control": 1, "t": -1}}, "observed"),
        ({"observed": {"control": 1, "t": 1}, "weights": {"control": 1}}, "weights"),
        ({"observed": {"control": 1, "t": 1}, "weights": {"control": 1, "t": -1}}, "weights"),
        ({"observed": {"control": 1, "t": 1}, "threshold": 1.5}, "threshold"),
        ({"observed": {"control": 1, "t": 1}, "concentrations": 0.0}, "concentrations"),
        ({"observed": {"control": 1, "t": 1}, "concentrations": math.inf}, "concentrations"),
        ({"observed": {"control": 1, "t": 1}, "concentrations": ()}, "concentrations"),
        ({"observed": {"control": 1, "t": 1}, "concentrations": (100.0, -1.0)}, "concentrations"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(ArgumentError) as info:
        sequential_srm_test(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument
    assert argument in str(info.value)


def test_periods_with_one_split_pool_into_one_mixture() -> None:
    counts = {0: {"c": 300, "t": 280}, 1: {"c": 700, "t": 650}, 2: {"c": 10, "t": 5}}
    same = {0: {"c": 1, "t": 1}, 1: {"c": 50, "t": 50}, 2: {"c": 3, "t": 3}}
    r = period_sequential_srm_test(counts, same, ["c", "t"])
    assert r == sequential_srm_test({"c": 1010, "t": 935}, {"c": 1, "t": 1})

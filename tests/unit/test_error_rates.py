"""Fast, always-run version of the simulation study (``studies/stats_error_rates.py``).

Fewer and smaller datasets, so the bands are wider, but each still has a real failure mode: a
variance formula off by a factor of 1.5, a method that leaks the outcome into its covariate
(CUPAC without cross-fitting), or peeking without an always-valid test all land outside.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from splitlab.core.analysis.analyze import MetricStatistics, analyze, analyze_statistics
from splitlab.core.stats.comparison import Comparison
from splitlab.core.stats.sufficient import Moments

COVARIATES = ["pre", "x0", "x1", "x2"]
CUPAC = {"cupac_models": ["gradient_boosting"], "cupac_folds": 3, "cupac_params": {"max_iter": 15}}
METHODS = ("none", "cuped", "regression", "cupac", "auto")


def simulate(seed: int, n: int, effect: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    treated = rng.random(n) < 0.5
    mean = 2.0 * np.sin(2.0 * x[:, 0]) + x[:, 1] ** 2 + x[:, 0] * x[:, 2]
    data = {
        "variant": np.where(treated, "treatment", "control"),
        "y": mean + rng.normal(size=n) + effect * treated,
        "pre": mean + 2.0 * rng.normal(size=n),
    }
    data.update({f"x{i}": x[:, i] for i in range(3)})
    return data


def _all_methods(data: dict[str, np.ndarray], seed: int) -> dict[str, Comparison]:
    metric = analyze(
        data, metrics=["y"], covariates=COVARIATES, random_state=seed, **CUPAC
    ).metrics["y"]
    out = {m: metric.candidates[m].comparisons["treatment"] for m in METHODS if m != "auto"}
    out["auto"] = metric.comparisons["treatment"].comparison
    return out


def _in_sample(data: dict[str, np.ndarray]) -> Comparison:
    features = np.column_stack([data[c] for c in COVARIATES])
    model = HistGradientBoostingRegressor(max_iter=60, random_state=0).fit(features, data["y"])
    prediction = model.predict(features)
    treated = data["variant"] == "treatment"
    matrix = np.column_stack([data["y"], prediction])
    moments = {
        "control": Moments.from_arrays(matrix[~treated]),
        "treatment": Moments.from_arrays(matrix[treated]),
    }
    stats = MetricStatistics("y", "mean", moments, ("y", "prediction"), ("prediction",))
    result = analyze_statistics([stats], {k: m.n for k, m in moments.items()}, method="regression")
    return result.metrics["y"].comparisons["treatment"].comparison


def test_false_positive_rate_of_every_method() -> None:
    """200 A/A datasets: each method rejects 1.5%-10% at alpha 0.05 (binomial sd 1.5%)."""
    rejected = dict.fromkeys(METHODS, 0)
    with threadpool_limits(1):
        for seed in range(200):
            for name, c in _all_methods(simulate(seed, 400, 0.0), seed).items():
                rejected[name] += int(c.p_value < 0.05)
    rates = {m: r / 200 for m, r in rejected.items()}
    for method, rate in rates.items():
        assert 0.015 <= rate <= 0.10, (method, rates)


def test_cross_fitting_keeps_coverage_and_in_sample_fitting_does_not() -> None:
    """100 datasets with a true effect: cross-fitted CUPAC covers it, in-sample CUPAC does not."""
    effect = 0.5
    covered = {"cupac": 0, "in_sample": 0}
    estimates: dict[str, list[float]] = {"cupac": [], "in_sample": []}
    with threadpool_limits(1):
        for seed in range(100):
            data = simulate(10_000 + seed, 400, effect)
            fits = {"cupac": _all_methods(data, seed)["cupac"], "in_sample": _in_sample(data)}
            for name, c in fits.items():
                covered[name] += int(c.ci_lower <= effect <= c.ci_upper)
                estimates[name].append(c.effect)
    assert covered["cupac"] >= 88
    cupac = np.asarray(estimates["cupac"])
    assert abs(cupac.mean() - effect) < 3 * cupac.std(ddof=1) / math.sqrt(cupac.size)
    leaked = np.asarray(estimates["in_sample"])
    assert covered["in_sample"] <= 70
    assert leaked.mean() < effect - 3 * leaked.std(ddof=1) / math.sqrt(leaked.size)


@pytest.mark.parametrize("sequential", [False, True])
def test_peeking_twenty_times(sequential: bool) -> None:
    """300 A/A streams, 20 looks: peeking inflates the fixed test; the always-valid one holds."""
    rejected = 0
    for seed in range(300):
        rng = np.random.default_rng(20_000 + seed)
        running = {"control": Moments.empty(1), "treatment": Moments.empty(1)}
        for _ in range(20):
            treated = rng.random(50) < 0.5
            y = rng.lognormal(0.0, 1.0, 50)
            running["control"] += Moments.from_arrays(y[~treated])
            running["treatment"] += Moments.from_arrays(y[treated])
            stats = MetricStatistics("y", "mean", dict(running), ("y",))
            result = analyze_statistics(
                [stats],
                {k: m.n for k, m in running.items()},
                method="none",
                sequential=sequential,
                tuning_n=1000,
            )
            if result.metrics["y"].comparisons["treatment"].comparison.p_value < 0.05:
                rejected += 1
                break
    if sequential:
        assert rejected / 300 <= 0.05
    else:
        assert rejected / 300 >= 0.12

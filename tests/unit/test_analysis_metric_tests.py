"""``splitlab.analyze(..., tests=..., quantiles=...)``: every metric's test and effect size."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import splitlab
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.metric_tests import bootstrap_quantile, mann_whitney_test


def _data(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "treatment"], n)
    treated = variant == "treatment"
    return pd.DataFrame(
        {
            "variant": variant,
            "revenue": rng.lognormal(0, 1, n) * np.where(treated, 1.2, 1.0),
            "ctr": (rng.random(n) < np.where(treated, 0.12, 0.08)).astype(float),
            "latency": rng.gamma(2.0, 50.0, n),
            "clicks": rng.poisson(3, n).astype(float),
            "sessions": rng.poisson(5, n).astype(float) + 1,
        }
    )


def test_each_metric_gets_its_test_and_every_comparison_its_effect_sizes() -> None:
    data = _data()
    result = splitlab.analyze(
        data,
        metrics=["revenue", "ctr", "latency"],
        ratio_metrics={"cpr": ("clicks", "sessions")},
        method="none",
        tests={"revenue": "mann_whitney", "ctr": "chi2", "latency": "bootstrap_bca"},
        quantiles={"latency": 0.9},
        resamples=300,
        random_state=4,
    )
    c = data[data.variant == "control"]
    t = data[data.variant == "treatment"]

    revenue = result.metrics["revenue"]
    assert revenue.test == "mann_whitney"
    mw = revenue.comparisons["treatment"].test
    assert mw is not None
    ref = sps.mannwhitneyu(t.revenue, c.revenue, method="asymptotic")
    assert mw.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert mw == mann_whitney_test(c.revenue.to_numpy(), t.revenue.to_numpy())

    ctr = result.metrics["ctr"].comparisons["treatment"].test
    assert ctr is not None
    assert ctr.test == "chi2"
    table = [[c.ctr.sum(), len(c) - c.ctr.sum()], [t.ctr.sum(), len(t) - t.ctr.sum()]]
    assert ctr.p_value == pytest.approx(sps.chi2_contingency(table, False).pvalue, rel=1e-9)

    latency = result.metrics["latency"]
    assert (latency.test, latency.quantile) == ("bootstrap_bca", 0.9)
    expected = bootstrap_quantile(
        c.latency.to_numpy(), t.latency.to_numpy(), 0.9, "bca", 300, random_state=4
    )
    assert latency.comparisons["treatment"].test == expected

    ratio = result.metrics["cpr"]
    assert ratio.test == "welch"
    assert math.isnan(ratio.comparisons["treatment"].cohens_d)
    delta = ratio.comparisons["treatment"].test
    assert delta is not None
    assert delta.p_value == pytest.approx(ratio.comparisons["treatment"].comparison.p_value)

    pooled = math.sqrt(
        ((len(c) - 1) * c.revenue.var() + (len(t) - 1) * t.revenue.var()) / (len(data) - 2)
    )
    d = (t.revenue.mean() - c.revenue.mean()) / pooled
    assert revenue.comparisons["treatment"].cohens_d == pytest.approx(d, rel=1e-9)

    body = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    comp = body["metrics"]["latency"]["comparisons"]["treatment"]
    assert body["metrics"]["latency"]["test"] == "bootstrap_bca"
    assert body["metrics"]["latency"]["quantile"] == 0.9
    assert comp["test"]["n_resamples"] == 300
    assert comp["cohens_d"] == pytest.approx(latency.comparisons["treatment"].cohens_d)
    assert body["metrics"]["revenue"]["comparisons"]["treatment"]["test"]["prob_superiority"]
    assert "rel_effect" in comp


def test_the_default_test_is_welch_and_changes_no_other_number() -> None:
    data = _data(seed=1)
    plain = splitlab.analyze(data, metrics=["revenue"], method="none")
    comp = plain.metrics["revenue"].comparisons["treatment"]
    assert plain.metrics["revenue"].test == "welch"
    assert comp.test is not None
    assert comp.test.p_value == pytest.approx(comp.comparison.p_value, rel=1e-12)
    assert comp.test.ci_lower == pytest.approx(comp.comparison.ci_lower, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "argument", "message"),
    [
        ({"tests": {"revenue": "chi2"}}, "tests", "needs a 0/1 metric"),
        ({"tests": {"revenue": "z"}}, "tests", "needs a 0/1 metric"),
        ({"tests": {"revenue": "t_test"}}, "tests", "must be one of"),
        ({"tests": {"nope": "welch"}}, "tests", "unknown metrics"),
        (
            {"tests": {"revenue": "bootstrap_bca"}, "quantiles": {"revenue": 1.2}},
            "quantiles",
            r"in \(0, 1\)",
        ),
        ({"quantiles": {"revenue": 0.9}}, "quantiles", "bootstrap test only"),
        ({"tests": {"ctr": "chi2"}, "alternative": "greater"}, "tests", "use 'z'"),
    ],
)
def test_a_test_that_does_not_fit_is_refused(
    kwargs: dict[str, object], argument: str, message: str
) -> None:
    with pytest.raises(ArgumentError, match=message) as info:
        splitlab.analyze(_data(200), metrics=["revenue", "ctr"], method="none", **kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


def test_a_ratio_metric_takes_the_delta_method_only() -> None:
    with pytest.raises(ArgumentError, match="delta method") as info:
        splitlab.analyze(
            _data(200),
            ratio_metrics={"cpr": ("clicks", "sessions")},
            tests={"cpr": "mann_whitney"},
        )
    assert info.value.argument == "tests"

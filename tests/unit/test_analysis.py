"""``splitlab.analyze``: the array path, the sufficient-statistics path, the JSON shape, errors."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import splitlab
from splitlab.core.analysis.analyze import (
    CUPAC_COLUMN,
    MetricStatistics,
    analyze_horizons,
    analyze_statistics,
    compute_statistics,
)
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.sufficient import Moments

FAST_CUPAC: dict[str, Any] = {"cupac_params": {"max_iter": 40}, "cupac_folds": 3}


def make_data(n: int = 3000, seed: int = 0, effect: float = 0.3, arms: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = ["control", *[f"t{i}" for i in range(1, arms)]]
    variant = rng.choice(labels, n)
    x = rng.normal(size=(n, 3))
    pre = 5 + 2 * x[:, 0] + rng.normal(size=n)
    revenue = (
        5
        + 2 * x[:, 0]
        + np.sin(3 * x[:, 1]) * 1.5
        + rng.normal(size=n)
        + effect * (variant == "t1")
    )
    converted = (rng.random(n) < 0.1 + 0.02 * (variant == "t1")).astype(int)
    sessions = rng.poisson(4, n) + 1
    clicks = rng.binomial(sessions, 0.3)
    return pd.DataFrame(
        {
            "variant": variant,
            "revenue": revenue,
            "revenue_pre": pre,
            "f1": x[:, 1],
            "f2": x[:, 2],
            "converted": converted,
            "clicks": clicks,
            "sessions": sessions,
        }
    )


def test_to_dict_has_the_public_shape_and_is_strict_json() -> None:
    result = splitlab.analyze(
        make_data(), metrics=["revenue"], covariates=["revenue_pre"], method="cuped"
    )
    out = result.to_dict()
    json.dumps(out, allow_nan=False)
    assert set(out["srm"]) >= {"p_value", "observed", "expected_weights"}
    metric = out["metrics"]["revenue"]
    assert metric["method"] == "cuped"
    assert 0.5 < metric["variance_reduction"] < 0.9
    comparison = metric["comparisons"]["t1"]
    assert set(comparison) >= {
        "n_control",
        "n_treatment",
        "mean_control",
        "mean_treatment",
        "effect",
        "ci_lower",
        "ci_upper",
        "rel_effect",
        "rel_ci_lower",
        "rel_ci_upper",
        "p_value",
    }
    assert set(metric["comparisons"]) == {"t1", "t2"}
    assert comparison["ci_lower"] < comparison["effect"] < comparison["ci_upper"]
    assert isinstance(result, splitlab.AnalysisResult)


@pytest.mark.parametrize("method", ["none", "cuped", "regression", "cupac", "auto"])
def test_sql_aggregates_reproduce_the_array_path(method: str) -> None:
    """The analyzer recomputes results from SUM()/COUNT() aggregates: same numbers to 1e-9."""
    data = make_data(seed=1)
    covariates = ["revenue_pre", "f1", "f2"]
    kwargs = {"metrics": ["revenue", "converted"], "covariates": covariates, "method": method}
    direct = splitlab.analyze(data, **kwargs, **FAST_CUPAC).to_dict()

    stats, counts, rows = compute_statistics(
        data,
        metrics=["revenue", "converted"],
        covariates=covariates,
        cupac=method in ("cupac", "auto"),
        cupac_folds=3,
        cupac_params={"max_iter": 40},
    )
    rebuilt = []
    for s in stats:
        # What SQL returns: COUNT(*), SUM(col), SUM(col_a * col_b) per variant.
        columns = [data[c].to_numpy(float) for c in s.columns if c != CUPAC_COLUMN]
        if s.cupac is not None:
            columns.append(s.cupac.predictions)
        matrix = np.column_stack(columns)
        moments = {}
        for v in counts:
            block = matrix[data["variant"].to_numpy() == v]
            moments[v] = Moments.from_sums(block.shape[0], block.sum(axis=0), block.T @ block)
        rebuilt.append(
            MetricStatistics(s.name, s.kind, moments, s.columns, s.covariates, cupac=s.cupac)
        )
    via_sql = analyze_statistics(rebuilt, counts, method=method, rows=rows).to_dict()
    _assert_same(direct, via_sql)


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            if key not in ("elapsed_s", "reason"):
                _assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12)
    else:
        assert a == b


def test_dataframe_and_mapping_agree() -> None:
    data = make_data(seed=2)
    as_frame = splitlab.analyze(
        data, metrics=["revenue"], covariates=["revenue_pre"], method="regression"
    )
    as_map = splitlab.analyze(
        {c: data[c].to_numpy() for c in data.columns},
        metrics=["revenue"],
        covariates=["revenue_pre"],
        method="regression",
    )
    assert as_frame.to_dict() == as_map.to_dict()


def test_cupac_removes_nonlinear_variance_and_auto_picks_it() -> None:
    result = splitlab.analyze(
        make_data(n=4000, seed=3),
        metrics=["revenue"],
        covariates=["revenue_pre", "f1", "f2"],
        **FAST_CUPAC,
    )
    metric = result.metrics["revenue"]
    assert metric.cupac is not None
    assert metric.cupac.model == "gradient_boosting"
    assert metric.method == "cupac"
    assert metric.variance_reduction > metric.candidates["cuped"].variance_reduction + 0.05
    assert "smallest variance" in metric.reason


def test_auto_falls_back_to_none_with_a_reason() -> None:
    data = make_data(seed=4)
    data["noise"] = np.random.default_rng(9).normal(size=len(data))
    result = splitlab.analyze(
        data,
        metrics=["converted"],
        covariates=["noise"],
        method="auto",
        cupac_models=["linear"],
        cupac_folds=3,
    )
    metric = result.metrics["converted"]
    if metric.method == "none":
        assert "fell back" in metric.reason
    else:  # a pure-noise covariate can win by a hair; it must then be a real reduction
        assert metric.variance_reduction > 0


def test_proportions_use_the_z_test_and_ratios_the_delta_method() -> None:
    result = splitlab.analyze(
        make_data(seed=5),
        metrics=["converted"],
        method="none",
        ratio_metrics={"ctr": ("clicks", "sessions")},
    )
    assert result.metrics["converted"].kind == "proportion"
    assert result.metrics["converted"].detail == "two-proportion z"
    ctr = result.metrics["ctr"]
    assert ctr.kind == "ratio"
    assert ctr.comparisons["t1"].comparison.mean_control == pytest.approx(0.3, abs=0.02)


def test_missing_values_are_dropped_and_counted() -> None:
    data = make_data(seed=6)
    data.loc[:9, "revenue"] = np.nan
    data.loc[10:14, "variant"] = None
    data.loc[20:29, "revenue_pre"] = np.nan
    result = splitlab.analyze(data, metrics=["revenue"], covariates=["revenue_pre"], method="cuped")
    out = result.to_dict()
    assert out["rows"] == {"total": len(data), "missing_variant": 5}
    assert out["metrics"]["revenue"]["dropped_rows"] == 10
    assert out["metrics"]["revenue"]["imputed_covariates"] == 10
    total = sum(out["srm"]["observed"].values())
    assert total == len(data) - 5


def test_degenerate_metric_gives_nan_and_status() -> None:
    data = make_data(seed=7)
    data["flat"] = 1.0
    result = splitlab.analyze(data, metrics=["flat"], method="none")
    comparison = result.to_dict()["metrics"]["flat"]["comparisons"]["t1"]
    assert comparison["p_value"] is None
    assert comparison["status"].startswith("degenerate")


def test_multiple_arms_are_corrected() -> None:
    result = splitlab.analyze(
        make_data(seed=8, arms=4), metrics=["revenue"], method="none", correction="bonferroni"
    )
    comps = result.metrics["revenue"].comparisons
    assert len(comps) == 3
    for c in comps.values():
        assert c.p_value_adjusted == pytest.approx(min(1.0, 3 * c.comparison.p_value))


def test_sequential_intervals_are_wider() -> None:
    data = make_data(seed=9)
    fixed = (
        splitlab.analyze(data, metrics=["revenue"], method="none")
        .metrics["revenue"]
        .comparisons["t1"]
    )
    seq = splitlab.analyze(data, metrics=["revenue"], method="none", sequential=True)
    always = seq.metrics["revenue"].comparisons["t1"].comparison
    assert seq.sequential
    assert always.ci_lower < fixed.comparison.ci_lower
    assert always.p_value > fixed.comparison.p_value


def test_srm_uses_configured_weights() -> None:
    rng = np.random.default_rng(10)
    variant = np.where(rng.random(10_000) < 0.8, "control", "t1")
    data = {"variant": variant, "y": rng.normal(size=10_000)}
    assert splitlab.analyze(data, metrics=["y"], method="none").srm.status == "mismatch"
    weighted = splitlab.analyze(
        data, metrics=["y"], method="none", weights={"control": 0.8, "t1": 0.2}
    )
    assert weighted.srm.status == "ok"
    assert (
        splitlab.analyze(data, metrics=["y"], method="none", weights=[0.8, 0.2]).srm.status == "ok"
    )


def test_decision_uses_primary_and_guardrails() -> None:
    data = make_data(n=6000, seed=11, effect=1.0, arms=2)
    data["latency"] = np.random.default_rng(1).normal(100, 5, len(data)) + 20 * (
        data["variant"] == "t1"
    )
    shipped = splitlab.analyze(data, metrics=["revenue"], method="none")
    assert shipped.decisions["t1"].action == "ship"
    guarded = splitlab.analyze(
        data,
        metrics=["revenue", "latency"],
        method="none",
        guardrails={"latency": 0.02},
        lower_is_better=["latency"],
    )
    assert guarded.decisions["t1"].action == "roll_back"


def test_nonparametric_extras() -> None:
    result = splitlab.analyze(
        make_data(seed=12),
        metrics=["revenue"],
        method="none",
        mann_whitney_test=True,
        bootstrap=200,
    )
    comparison = result.to_dict()["metrics"]["revenue"]["comparisons"]["t1"]
    assert 0 <= comparison["mann_whitney_p_value"] <= 1
    assert comparison["bootstrap_ci_lower"] < comparison["bootstrap_ci_upper"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metrics": ["nope"]}, r"metric column\(s\) \['nope'\] not found"),
        ({"metrics": ["revenue"], "covariates": ["nope"]}, "covariate column"),
        ({"metrics": ["revenue"], "control": "baseline"}, "control='baseline' is not a value"),
        ({"metrics": ["revenue"], "variant_col": "nope"}, "variant_col"),
        ({"metrics": ["variant"]}, "not numeric"),
        ({"metrics": ["revenue"], "alpha": 1.5}, "alpha must be"),
        ({"metrics": ["revenue"], "method": "magic"}, "method must be one of"),
        ({"metrics": ["revenue"], "method": "cuped"}, "needs covariates"),
        ({"metrics": ["revenue"], "alternative": "bigger"}, "alternative must be"),
        ({"metrics": []}, "metrics must name"),
        ({"metrics": ["revenue"], "weights": [1.0]}, "weights has 1 entries"),
        ({"metrics": ["revenue"], "guardrails": {"nope": 0.1}}, "unknown metrics"),
        ({"metrics": ["revenue"], "correction": "sidak"}, "correction must be"),
    ],
)
def test_bad_input_names_the_column_or_argument(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        splitlab.analyze(make_data(n=300, seed=13), **kwargs)


def test_a_single_variant_is_rejected() -> None:
    data = {"variant": ["control"] * 10, "y": np.arange(10.0)}
    with pytest.raises(ValueError, match="need >= 2"):
        splitlab.analyze(data, metrics=["y"])


def test_object_numbers_and_booleans_are_accepted() -> None:
    rng = np.random.default_rng(14)
    variant = rng.choice(["control", "t"], 500)
    data = {
        "variant": variant,
        "y": np.array(
            [float(v) if i % 50 else None for i, v in enumerate(rng.normal(size=500))], dtype=object
        ),
        "flag": rng.random(500) < 0.3,
    }
    result = splitlab.analyze(data, metrics=["y", "flag"], method="none")
    assert result.metrics["y"].dropped_rows == 10
    assert result.metrics["flag"].kind == "proportion"
    assert math.isfinite(result.metrics["y"].comparisons["t"].comparison.p_value)


@pytest.mark.parametrize("method", ["none", "cuped", "auto"])
def test_both_horizons_of_one_pass_equal_two_separate_analyses(method: str) -> None:
    """``analyze_horizons`` estimates once and views the estimates at both horizons: the
    same numbers as a fixed-horizon and an always-valid ``analyze_statistics``."""
    data = make_data(seed=3)
    stats, counts, rows = compute_statistics(
        data, metrics=["revenue", "converted"], covariates=["revenue_pre", "f1"]
    )
    options: dict[str, Any] = {
        "method": method,
        "rows": rows,
        "guardrails": {"converted": 0.05},
        "tuning_n": 3000.0,
    }
    both = analyze_horizons(stats, counts, min_sample=500, **options)
    fixed = analyze_statistics(stats, counts, sequential=False, min_sample=500, **options)
    sequential = analyze_statistics(stats, counts, sequential=True, **options)
    assert both.fixed.to_dict() == fixed.to_dict()
    assert both.sequential.to_dict() == sequential.to_dict()
    assert both.at(True) is both.sequential
    assert both.fixed.to_dict() != both.sequential.to_dict()


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"method": "magic"}, "method"),
        ({"alternative": "sideways"}, "alternative"),
        ({"correction": "sidak"}, "correction"),
        ({"control": "base"}, "control"),
        ({"metrics": ["nope"]}, "metrics"),
        ({"covariates": ["nope"]}, "covariates"),
        ({"variant_col": "arm"}, "variant_col"),
        ({"guardrails": {"nope": 0.1}}, "guardrails"),
        ({"mde": -0.1}, "mde"),
    ],
)
def test_a_bad_argument_is_an_argument_error_carrying_its_name(
    options: dict[str, Any], argument: str
) -> None:
    """The name travels as data (``.argument``) to the 422's ``field`` and the CLI option."""
    data = make_data(n=300, seed=4)
    call: dict[str, Any] = {"metrics": ["revenue"], "method": "none", **options}
    with pytest.raises(ArgumentError) as caught:
        splitlab.analyze(data, **call)
    assert caught.value.argument == argument
    assert isinstance(caught.value, ValueError)  # callers catching ValueError still do


def test_the_options_of_the_public_analysis_functions_are_keywords() -> None:
    data = make_data(n=300, seed=4)
    with pytest.raises(TypeError):
        splitlab.analyze(data, "variant")  # type: ignore[misc]
    stats, counts, _ = compute_statistics(data, metrics=["revenue"])
    with pytest.raises(TypeError):
        analyze_statistics(stats, counts, "control")  # type: ignore[misc]

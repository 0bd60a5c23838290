"""``splitlab.analyze(..., in_experiment_covariates=[...])``: CUNOPAC with its balance gate."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from splitlab.contracts.analysis import AnalysisBody
from splitlab.core.analysis.analyze import CovariateRefusedWarning, analyze
from splitlab.core.errors import ArgumentError


def _frame(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    device = rng.normal(0.0, 1.0, n)  # observed during the experiment, untouched by it
    engaged = rng.normal(0.0, 1.0, n) + 0.3 * treated  # moved by the treatment
    revenue = 10.0 + 2.0 * device + 1.5 * engaged + rng.normal(0, 1, n) + 0.2 * treated
    return pd.DataFrame(
        {
            "variant": np.where(treated, "treatment", "control"),
            "revenue": revenue,
            "device_score": device,
            "pages_seen": engaged,
            "revenue_pre": revenue * 0.1 + rng.normal(0, 3, n),
        }
    )


def test_a_moved_covariate_is_refused_and_the_valid_one_used() -> None:
    df = _frame(1)
    with pytest.warns(CovariateRefusedWarning, match="pages_seen.*moved by the treatment"):
        result = analyze(
            df,
            metrics=["revenue"],
            in_experiment_covariates=["device_score", "pages_seen"],
            method="regression",
        )
    metric = result.metrics["revenue"]
    checks = {c.covariate: c for c in metric.balance}
    assert checks["device_score"].used
    assert not checks["pages_seen"].used
    assert checks["pages_seen"].p_value < 1e-6
    assert "refused in-experiment covariate(s) pages_seen" in metric.reason
    # The analysis is the one with the valid covariate alone.
    valid = analyze(df, metrics=["revenue"], covariates=["device_score"], method="regression")
    a = metric.comparisons["treatment"].comparison
    b = valid.metrics["revenue"].comparisons["treatment"].comparison
    assert a.effect == pytest.approx(b.effect, rel=1e-12)
    assert a.se == pytest.approx(b.se, rel=1e-12)
    out = result.to_dict()["metrics"]["revenue"]["in_experiment_covariates"]
    moved = next(c for c in out if c["covariate"] == "pages_seen")
    typed = AnalysisBody.model_validate(result.to_dict()).metrics["revenue"]
    assert typed.in_experiment_covariates is not None
    assert [c.used for c in typed.in_experiment_covariates] == [True, False]
    assert moved["used"] is False
    assert moved["means"]["treatment"] == pytest.approx(
        df[df.variant == "treatment"].pages_seen.mean(), rel=1e-12
    )
    assert moved["differences"]["treatment"] == pytest.approx(
        df[df.variant == "treatment"].pages_seen.mean()
        - df[df.variant == "control"].pages_seen.mean(),
        rel=1e-12,
    )
    assert moved["p_value"] < 1e-6
    assert "refused" in moved["message"]


def test_the_refused_covariate_would_have_biased_the_effect() -> None:
    df = _frame(2)
    biased = analyze(df, metrics=["revenue"], covariates=["pages_seen"], method="regression")
    fair = analyze(df, metrics=["revenue"], method="none")
    truth = 0.2 + 1.5 * 0.3
    # Adjusting for the moved covariate removes its share of the effect (1.5 * 0.3).
    assert biased.metrics["revenue"].comparisons["treatment"].comparison.effect < 0.35
    assert fair.metrics["revenue"].comparisons["treatment"].comparison.ci_lower < truth


def test_with_every_covariate_refused_the_requested_method_falls_back() -> None:
    df = _frame(3)
    with pytest.warns(CovariateRefusedWarning):
        result = analyze(
            df, metrics=["revenue"], in_experiment_covariates=["pages_seen"], method="cuped"
        )
    metric = result.metrics["revenue"]
    assert metric.method == "none"
    assert metric.requested_method == "cuped"
    assert "pages_seen" in metric.reason


def test_balanced_covariates_give_no_warning_and_join_pre_covariates() -> None:
    df = _frame(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = analyze(
            df,
            metrics=["revenue"],
            covariates=["revenue_pre"],
            in_experiment_covariates=["device_score"],
            method="regression",
        )
    metric = result.metrics["revenue"]
    assert [c.covariate for c in metric.balance] == ["device_score"]
    assert metric.balance[0].used
    assert metric.detail.startswith("2 covariate(s)")
    assert metric.variance_reduction > 0.5


def test_balance_alpha_sets_the_level() -> None:
    df = _frame(5)
    p = (
        analyze(df, metrics=["revenue"], in_experiment_covariates=["device_score"], method="none")
        .metrics["revenue"]
        .balance[0]
        .p_value
    )
    with pytest.warns(CovariateRefusedWarning):
        strict = analyze(
            df,
            metrics=["revenue"],
            in_experiment_covariates=["device_score"],
            balance_alpha=min(0.999, p + 0.01),
            method="regression",
        )
    assert not strict.metrics["revenue"].balance[0].used


def test_ratio_metrics_take_in_experiment_covariates() -> None:
    df = _frame(6).assign(orders=lambda d: 1.0 + (d.device_score > 0))
    with pytest.warns(CovariateRefusedWarning):
        result = analyze(
            df,
            ratio_metrics={"per_order": ("revenue", "orders")},
            in_experiment_covariates=["device_score", "pages_seen"],
            method="cuped",
        )
    metric = result.metrics["per_order"]
    assert metric.method == "cuped"
    assert "device_score" in metric.detail
    assert "pages_seen" not in metric.detail


def test_arguments() -> None:
    df = _frame(7)
    for bad, match in [
        (["nope"], "not found"),
        (["revenue"], "pick one role"),
        ("device_score", "not a string"),
    ]:
        with pytest.raises(ArgumentError, match=match) as err:
            analyze(df, metrics=["revenue"], in_experiment_covariates=bad)  # type: ignore[arg-type]
        assert err.value.argument == "in_experiment_covariates"
    with pytest.raises(ArgumentError, match="balance_alpha"):
        analyze(df, metrics=["revenue"], in_experiment_covariates=["device_score"], balance_alpha=0)

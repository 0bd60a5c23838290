"""``splitlab.analyze`` on ratio metrics with covariates (ratio CUPED), against a per-unit
reference by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from splitlab.core.analysis.analyze import analyze
from splitlab.core.errors import ArgumentError


def _frame(seed: int = 0, n: int = 4000, lift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(n) < 0.5, "control", "treatment")
    activity = rng.gamma(2.0, 2.0, n)
    ctr = rng.beta(2, 3, n)
    sessions = rng.poisson(activity) + 1
    sessions_pre = rng.poisson(activity) + 1
    treated = variant == "treatment"
    clicks = rng.binomial(sessions, np.clip(ctr * (1 + lift * treated), 0, 1))
    clicks_pre = rng.binomial(sessions_pre, ctr)
    return pd.DataFrame(
        {
            "variant": variant,
            "clicks": clicks.astype(float),
            "sessions": sessions.astype(float),
            "clicks_pre": clicks_pre.astype(float),
            "sessions_pre": sessions_pre.astype(float),
        }
    )


def _reference(df: pd.DataFrame, xs: list[str]) -> tuple[float, float]:
    """Effect and its standard error, from per-unit values (numpy by hand)."""
    arms = [df[df.variant == v] for v in ("control", "treatment")]
    ratios = [a.clicks.sum() / a.sessions.sum() for a in arms]
    lin = [
        (a.clicks.to_numpy() - r * a.sessions.to_numpy()) / a.sessions.mean()
        for a, r in zip(arms, ratios, strict=True)
    ]
    x = [a[xs].to_numpy() for a in arms]
    centred_x = np.concatenate([xi - xi.mean(axis=0) for xi in x])
    centred_l = np.concatenate([li - li.mean() for li in lin])
    theta = np.linalg.solve(centred_x.T @ centred_x, centred_x.T @ centred_l)
    overall = df[xs].to_numpy().mean(axis=0)
    means = [r - (xi.mean(axis=0) - overall) @ theta for r, xi in zip(ratios, x, strict=True)]
    variances = [(li - xi @ theta).var(ddof=1) / len(li) for li, xi in zip(lin, x, strict=True)]
    return means[1] - means[0], float(np.sqrt(sum(variances)))


@pytest.mark.parametrize("seed", range(4))
def test_ratio_cuped_effect_and_se_match_the_per_unit_reference(seed: int) -> None:
    df = _frame(seed, lift=0.03 * seed)
    xs = ["clicks_pre", "sessions_pre"]
    result = analyze(
        df, ratio_metrics={"ctr": ("clicks", "sessions")}, covariates=xs, method="cuped"
    )
    metric = result.metrics["ctr"]
    assert metric.kind == "ratio"
    assert metric.method == "cuped"
    comp = metric.comparisons["treatment"].comparison
    effect, se = _reference(df, xs)
    assert comp.effect == pytest.approx(effect, rel=1e-9, abs=1e-12)
    assert comp.se == pytest.approx(se, rel=1e-9)
    assert "clicks_pre, sessions_pre" in metric.detail
    # The CI is the Welch-Satterthwaite t interval around the effect.
    assert comp.ci_upper - comp.effect == pytest.approx(
        stats.t.ppf(0.975, comp.df) * comp.se, rel=1e-9
    )
    assert metric.variance_reduction > 0.2


def test_auto_picks_ratio_cuped_when_it_reduces_the_variance() -> None:
    df = _frame(7)
    result = analyze(
        df, ratio_metrics={"ctr": ("clicks", "sessions")}, covariates=["clicks_pre", "sessions_pre"]
    )
    metric = result.metrics["ctr"]
    assert metric.method == "cuped"
    assert set(metric.candidates) == {"none", "cuped"}
    out = result.to_dict()["metrics"]["ctr"]
    assert out["candidates"]["cuped"]["variance_reduction"] == pytest.approx(
        metric.variance_reduction
    )


def test_without_covariates_ratio_is_the_plain_delta_method() -> None:
    df = _frame(2)
    plain = analyze(df, ratio_metrics={"ctr": ("clicks", "sessions")}, method="none")
    auto = analyze(df, ratio_metrics={"ctr": ("clicks", "sessions")})
    assert auto.metrics["ctr"].method == "none"
    assert auto.metrics["ctr"].comparisons["treatment"].comparison.effect == pytest.approx(
        plain.metrics["ctr"].comparisons["treatment"].comparison.effect, rel=1e-12
    )


def test_requests_that_cannot_apply_name_the_argument() -> None:
    df = _frame(1)
    with pytest.raises(ArgumentError, match="needs covariates") as err:
        analyze(df, ratio_metrics={"ctr": ("clicks", "sessions")}, method="cuped")
    assert err.value.argument == "method"
    with pytest.raises(ArgumentError, match="does not apply to ratio metric"):
        analyze(
            df,
            ratio_metrics={"ctr": ("clicks", "sessions")},
            covariates=["clicks_pre"],
            method="regression",
        )
    with pytest.raises(ArgumentError, match="both a part of ratio metric") as err:
        analyze(df, ratio_metrics={"ctr": ("clicks", "sessions")}, covariates=["sessions"])
    assert err.value.argument == "covariates"


def test_ratio_cuped_across_allocation_periods() -> None:
    df = _frame(11, n=6000)
    rng = np.random.default_rng(1011)  # not _frame's seed: periods independent of variants
    df["period"] = (rng.random(len(df)) < 0.5).astype(int)
    options = {
        "ratio_metrics": {"ctr": ("clicks", "sessions")},
        "covariates": ["clicks_pre", "sessions_pre"],
        "method": "cuped",
    }
    pooled = analyze(df, **options).metrics["ctr"]
    even = {"control": 0.5, "treatment": 0.5}
    same = analyze(df, period_col="period", period_weights={0: even, 1: even}, **options)
    a = pooled.comparisons["treatment"].comparison
    b = same.metrics["ctr"].comparisons["treatment"].comparison
    assert b.effect == pytest.approx(a.effect, rel=1e-9)
    assert b.se == pytest.approx(a.se, rel=1e-9)
    # Two splits: each stratum gets its own ratio CUPED, combined by share.
    split = analyze(
        df,
        period_col="period",
        period_weights={0: even, 1: {"control": 0.3, "treatment": 0.7}},
        **options,
    ).metrics["ctr"]
    assert split.method == "cuped"
    assert split.candidates["cuped"].detail.startswith("delta method on the linearised ratio")
    assert split.variance_reduction > 0.2

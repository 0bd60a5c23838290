"""``splitlab.analyze(..., cluster_col=...)``: rows per session, randomised per user."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from splitlab.contracts.analysis import AnalysisBody
from splitlab.core.analysis.analyze import analyze
from splitlab.core.errors import ArgumentError


def _sessions(seed: int = 0, users: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(users) < 0.5, "control", "treatment")
    per_user = rng.poisson(3.0, users) + 1
    level = rng.normal(100.0, 20.0, users)
    user = np.repeat(np.arange(users), per_user)
    latency = level[user] + rng.normal(0.0, 10.0, user.size)
    latency[rng.random(user.size) < 0.05] = np.nan  # some requests without a value
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in user],
            "variant": variant[user],
            "latency": latency,
            "clicked": (rng.random(user.size) < 0.1).astype(float),
            "level_pre": level[user] + rng.normal(0, 5, users)[user],
        }
    )


def _delta_reference(df: pd.DataFrame, metric: str) -> tuple[float, float, float, float]:
    """Per-row means of both arms and the delta-method variances, by hand per user."""
    out = []
    for v in ("control", "treatment"):
        rows = df[(df.variant == v) & df[metric].notna()]
        g = rows.groupby("user_id")[metric]
        y, m = g.sum().to_numpy(), g.size().to_numpy().astype(float)
        n = y.size
        ratio = y.sum() / m.sum()
        lin = (y - ratio * m) / m.mean()
        out.append((ratio, lin.var(ddof=1) / n))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def test_per_row_mean_is_the_delta_method_over_clusters() -> None:
    df = _sessions(1)
    result = analyze(df, metrics=["latency"], cluster_col="user_id", method="none")
    metric = result.metrics["latency"]
    comp = metric.comparisons["treatment"].comparison
    mc, mt, vc, vt = _delta_reference(df, "latency")
    assert metric.kind == "ratio"
    assert comp.mean_control == pytest.approx(mc, rel=1e-12)
    assert comp.mean_treatment == pytest.approx(mt, rel=1e-12)
    assert comp.effect == pytest.approx(mt - mc, rel=1e-9)
    assert comp.se == pytest.approx(np.sqrt(vc + vt), rel=1e-9)
    # The per-row mean is the plain mean of the rows.
    rows = df[df.variant == "control"].latency
    assert comp.mean_control == pytest.approx(rows.mean(), rel=1e-12)
    # Units of the tests and of SRM are the users.
    users = df.groupby("variant").user_id.nunique()
    assert result.srm.observed == {"control": users["control"], "treatment": users["treatment"]}
    # A user whose every request lacks a latency has no value of the metric.
    with_value = df[df.latency.notna()].groupby("variant").user_id.nunique()
    assert comp.n_control == with_value["control"] < users["control"]
    out = result.to_dict()
    assert out["cluster"] == {
        "column": "user_id",
        "clusters": df.user_id.nunique(),
        "rows": len(df),
    }
    assert out["rows"]["total"] == len(df)
    typed = AnalysisBody.model_validate(out)
    assert typed.cluster is not None
    assert typed.cluster.clusters == df.user_id.nunique()


def test_equals_a_ratio_of_per_user_sums() -> None:
    df = _sessions(2)
    clustered = analyze(df, metrics=["clicked"], cluster_col="user_id")
    per_user = (
        df.assign(one=1.0)
        .groupby("user_id")
        .agg(variant=("variant", "first"), clicks=("clicked", "sum"), rows=("one", "sum"))
    )
    direct = analyze(per_user, ratio_metrics={"clicked": ("clicks", "rows")}, method="none")
    a = clustered.metrics["clicked"].comparisons["treatment"].comparison
    b = direct.metrics["clicked"].comparisons["treatment"].comparison
    assert a.effect == pytest.approx(b.effect, rel=1e-12, abs=1e-15)
    assert a.se == pytest.approx(b.se, rel=1e-12)


def test_the_naive_per_row_ci_is_narrower_on_correlated_rows() -> None:
    df = _sessions(3)
    naive = analyze(df.dropna(subset=["latency"]), metrics=["latency"], method="none")
    clustered = analyze(df, metrics=["latency"], cluster_col="user_id", method="none")
    se_naive = naive.metrics["latency"].comparisons["treatment"].comparison.se
    se_cluster = clustered.metrics["latency"].comparisons["treatment"].comparison.se
    assert se_cluster > 1.5 * se_naive  # intra-user correlation ~0.8, ~4 rows per user


def test_cluster_covariates_give_ratio_cuped() -> None:
    df = _sessions(4)
    result = analyze(
        df, metrics=["latency"], covariates=["level_pre"], cluster_col="user_id", method="cuped"
    )
    metric = result.metrics["latency"]
    assert metric.method == "cuped"
    assert metric.variance_reduction > 0.5


def test_ratio_metrics_per_row() -> None:
    df = _sessions(5).assign(one=1.0)
    a = analyze(df, ratio_metrics={"ctr": ("clicked", "one")}, cluster_col="user_id")
    b = analyze(df, metrics=["clicked"], cluster_col="user_id")
    ca = a.metrics["ctr"].comparisons["treatment"].comparison
    cb = b.metrics["clicked"].comparisons["treatment"].comparison
    assert ca.effect == pytest.approx(cb.effect, rel=1e-12, abs=1e-15)
    assert ca.se == pytest.approx(cb.se, rel=1e-12)


def test_a_cluster_in_two_variants_is_refused() -> None:
    df = _sessions(6)
    df.loc[0, "variant"] = "treatment" if df.loc[0, "variant"] == "control" else "control"
    df.loc[1, ["user_id", "variant"]] = [df.loc[0, "user_id"], "control"]
    df.loc[0, "variant"] = "treatment"
    with pytest.raises(ArgumentError, match="randomised as a whole") as err:
        analyze(df, metrics=["latency"], cluster_col="user_id")
    assert err.value.argument == "cluster_col"


def test_arguments() -> None:
    df = _sessions(7)
    with pytest.raises(ArgumentError, match="not found") as err:
        analyze(df, metrics=["latency"], cluster_col="session_owner")
    assert err.value.argument == "cluster_col"
    with pytest.raises(ArgumentError, match="resample units") as err:
        analyze(df, metrics=["latency"], cluster_col="user_id", bootstrap=200)
    assert err.value.argument == "cluster_col"
    df.loc[3, "user_id"] = None
    with pytest.raises(ArgumentError, match="missing values"):
        analyze(df, metrics=["latency"], cluster_col="user_id")

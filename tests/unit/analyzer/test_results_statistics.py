"""Reading grouped rows (variant x missing pattern) into statistics equals imputing the
per-unit data first and computing the moments directly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitlab.core.stats.sufficient import Moments
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.results.plan import Covariate, PlannedMetric
from splitlab_analyzer.results.statistics import read_statistics

IMPUTABLE = ["y0_pre", "f0"]
PLANNED = [
    PlannedMetric(
        MetricDef("order_value", "outcome", "purchase", "mean", covariates=("spend",)),
        "y0",
        None,
        (Covariate("y0_pre", "order_value_pre", True, 0), Covariate("f0", "spend", True)),
    )
]


def grouped_rows(units: dict[str, np.ndarray], variants: np.ndarray) -> list[dict[str, Any]]:
    """What the results query returns for these per-unit values (NaN = NULL)."""
    rows = []
    y, pre, f = units["y0"], units["y0_pre"], units["f0"]
    for v in np.unique(variants):
        for pre_missing in (False, True):
            for f_missing in (False, True):
                g = (variants == v) & (np.isnan(pre) == pre_missing) & (np.isnan(f) == f_missing)
                if not g.any():
                    continue
                present = g & ~np.isnan(y)
                cols = [y[present], np.nan_to_num(pre[present]), np.nan_to_num(f[present])]
                row: dict[str, Any] = {
                    "variant": str(v),
                    "y0_pre_missing": pre_missing,
                    "f0_missing": f_missing,
                    "units": int(g.sum()),
                    "first_at": None,
                    "last_at": None,
                    "y0_pre_events": int(g.sum()),
                    "m0_n": int(present.sum()),
                    "m0_binary": bool(np.isin(y[present], (0, 1)).all()) if present.any() else None,
                }
                for name, values in (("y0_pre", pre[g]), ("f0", f[g])):
                    kept = values[~np.isnan(values)]
                    row[f"{name}_count"] = int(kept.size)
                    row[f"{name}_avg"] = float(kept.mean()) if kept.size else None
                for a in range(3):
                    row[f"m0_mean{a}"] = float(cols[a].mean()) if present.any() else None
                    for b in range(a, 3):
                        row[f"m0_s{a}_{b}"] = (
                            float(((cols[a] - cols[a].mean()) * (cols[b] - cols[b].mean())).sum())
                            if present.any()
                            else None
                        )
                rows.append(row)
    return rows


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(min_value=20, max_value=200),
    seed=st.integers(min_value=0, max_value=10_000),
    missing=st.floats(min_value=0.0, max_value=0.6),
)
def test_grouped_rows_merge_into_the_moments_of_the_imputed_units(
    n: int, seed: int, missing: float
) -> None:
    rng = np.random.default_rng(seed)
    variants = rng.choice(np.array(["control", "t"]), n)
    y = rng.gamma(2.0, 10.0, n) + 1000.0  # an offset: centred moments must stay accurate
    y[rng.random(n) < 0.2] = np.nan  # no events: dropped for this mean metric
    pre = rng.normal(5.0, 2.0, n)
    pre[rng.random(n) < missing] = np.nan
    f = rng.normal(50.0, 3.0, n)
    f[rng.random(n) < missing] = np.nan
    units = {"y0": y, "y0_pre": pre, "f0": f}

    stats = read_statistics(grouped_rows(units, variants), ["control", "t"], PLANNED, [0],
                            IMPUTABLE)  # fmt: skip

    means = {c: float(np.nanmean(units[c])) for c in IMPUTABLE if not np.isnan(units[c]).all()}
    filled = {c: np.where(np.isnan(units[c]), means.get(c, 0.0), units[c]) for c in IMPUTABLE}
    metric = stats.metrics[0]
    keep = [0] + [1 + i for i, c in enumerate(IMPUTABLE) if c in means]
    for v in ("control", "t"):
        rows = (variants == v) & ~np.isnan(y)
        expected = Moments.from_arrays(y[rows], filled["y0_pre"][rows], filled["f0"][rows])
        assert metric.moments[v].allclose(expected.select(keep), rtol=1e-9, atol=1e-6)
        assert stats.counts[v] == int((variants == v).sum())
    assert metric.dropped_rows == int(np.isnan(y).sum())
    assert metric.imputed_covariates == sum(
        int(np.isnan(units[c]).sum()) for c in IMPUTABLE if c in means
    )


def test_a_covariate_no_unit_has_is_left_out() -> None:
    variants = np.array(["control", "t"] * 10)
    units = {
        "y0": np.arange(20, dtype=float),
        "y0_pre": np.full(20, np.nan),
        "f0": np.linspace(0.0, 1.0, 20),
    }
    stats = read_statistics(grouped_rows(units, variants), ["control", "t"], PLANNED, [0],
                            IMPUTABLE)  # fmt: skip
    assert stats.metrics[0].covariates == ("spend",)
    assert stats.metrics[0].moments["t"].k == 2
    assert stats.metrics[0].moments["t"].mean[0] == pytest.approx(np.arange(1, 20, 2).mean())

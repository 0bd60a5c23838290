"""Cluster-level analysis: rows (sessions, requests) randomised by a coarser unit (a user).

When the variant is assigned per user but the data hold one row per session or request, rows
of one user are correlated and a per-row t test (or CI) is too narrow. The rows are summed to
their randomisation unit, the *cluster*: a per-row metric ``m`` becomes the ratio metric
``sum(m) / rows(m)`` over clusters (``rows(m)``: the cluster's rows with a value of ``m``), and
a per-row ratio ``num/den`` becomes ``sum(num) / sum(den)``. The delta method
(:mod:`splitlab.core.stats.ratio`) then gives the per-row mean with a CI that accounts for the
correlation within clusters, and the clusters are the units of SRM and of every test.

Covariates (pre-exposure or in-experiment) are unit attributes: a cluster takes the mean of its
rows' values (the value itself when it is constant within the cluster, as a user's attribute
is). A cluster whose rows carry more than one variant is an error: it was not randomised as a
whole. A cluster's allocation period is the one of its first row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitlab.core.analysis.results import ClusterSummary
from splitlab.core.errors import ArgumentError

__all__ = ["ClusteredData", "aggregate_clusters", "cluster_columns"]


def cluster_columns(metric: str) -> tuple[str, str]:
    """The per-cluster columns a per-row metric becomes: its sum and its rows with a value."""
    return f"sum({metric})", f"rows({metric})"


@dataclass(frozen=True)
class ClusteredData:
    """Per-cluster columns and the ratio metrics that analyse them."""

    data: dict[str, np.ndarray]
    ratio_metrics: dict[str, tuple[str, str]]
    """Every metric, in the order given (per-row metrics first, then per-row ratios)."""
    summary: ClusterSummary
    missing_variant_rows: int


def _numeric(values: Any, name: str, argument: str) -> np.ndarray:
    import pandas as pd

    try:
        return np.asarray(pd.to_numeric(pd.Series(np.asarray(values)), errors="raise"), float)
    except (TypeError, ValueError):
        raise ArgumentError(
            argument, f"column {name!r} is not numeric; convert it to numbers or drop it"
        ) from None


def aggregate_clusters(
    columns: Mapping[str, Any],
    *,
    cluster_col: str,
    variant_col: str,
    metrics: Sequence[str],
    ratio_metrics: Mapping[str, tuple[str, str]],
    covariates: Sequence[str],
    in_experiment: Sequence[str],
    period_col: str | None,
) -> ClusteredData:
    """Sum per-row ``columns`` to one row per cluster (see the module's docstring)."""
    import pandas as pd

    for name, argument in [
        (cluster_col, "cluster_col"),
        (variant_col, "variant_col"),
        *((m, "metrics") for m in metrics),
        *((c, "covariates") for c in covariates),
        *((c, "in_experiment_covariates") for c in in_experiment),
        *((c, "ratio_metrics") for pair in ratio_metrics.values() for c in pair),
        *(((period_col, "period_col"),) if period_col is not None else ()),
    ]:
        if name not in columns:
            raise ArgumentError(
                argument,
                f"column {name!r} ({argument}) not found in the data; available columns: "
                + ", ".join(sorted(columns)[:20]),
            )
    clash = sorted(set(metrics) & set(ratio_metrics))
    if clash:
        raise ArgumentError("ratio_metrics", f"metric names {clash} are given twice")
    ids = pd.Series(np.asarray(columns[cluster_col], dtype=object))
    if ids.isna().any():
        raise ArgumentError(
            "cluster_col",
            f"cluster_col {cluster_col!r} has missing values; every row needs its "
            "randomisation unit",
        )
    variants = pd.Series(np.asarray(columns[variant_col], dtype=object))
    has_variant = variants.notna().to_numpy()
    codes, uniques = pd.factorize(ids[has_variant], sort=False)
    k = len(uniques)
    kept = variants[has_variant].astype(str)
    per_cluster = kept.groupby(codes).agg(["nunique", "first"])
    if (per_cluster["nunique"] > 1).any():
        bad = int(np.flatnonzero(per_cluster["nunique"].to_numpy() > 1)[0])
        seen = sorted(set(kept[codes == bad]))
        raise ArgumentError(
            "cluster_col",
            f"cluster {uniques[bad]!r} of cluster_col {cluster_col!r} has rows in variants "
            f"{seen}; a cluster must be randomised as a whole (is {cluster_col!r} the "
            "randomisation unit?)",
        )
    data: dict[str, np.ndarray] = {
        cluster_col: np.asarray(uniques, dtype=object),
        variant_col: per_cluster["first"].to_numpy(dtype=object),
    }

    def sums(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = np.bincount(codes, weights=np.where(valid, values, 0.0), minlength=k)
        rows = np.bincount(codes, weights=valid.astype(np.float64), minlength=k)
        none = rows == 0
        return np.where(none, np.nan, total), np.where(none, np.nan, rows)

    ratios: dict[str, tuple[str, str]] = {}
    for m in metrics:
        y = _numeric(columns[m], m, "metrics")[has_variant]
        s, r = sums(y, ~np.isnan(y))
        sum_col, rows_col = cluster_columns(m)
        data[sum_col], data[rows_col] = s, r
        ratios[m] = (sum_col, rows_col)
    for name, (num, den) in ratio_metrics.items():
        a = _numeric(columns[num], num, "ratio_metrics")[has_variant]
        b = _numeric(columns[den], den, "ratio_metrics")[has_variant]
        valid = ~np.isnan(a) & ~np.isnan(b)
        sa, _ = sums(a, valid)
        sb, _ = sums(b, valid)
        num_col, den_col = f"sum({num})", f"sum({den})"
        data[num_col], data[den_col] = sa, sb
        ratios[name] = (num_col, den_col)
    for c, argument in [
        *((c, "covariates") for c in covariates),
        *((c, "in_experiment_covariates") for c in in_experiment),
    ]:
        x = _numeric(columns[c], c, argument)[has_variant]
        total, rows = sums(x, ~np.isnan(x))
        data[c] = total / rows
    if period_col is not None:
        periods = np.asarray(columns[period_col], dtype=object)[has_variant]
        first = np.unique(codes, return_index=True)[1]  # codes run 0..k-1 by first row
        data[period_col] = periods[first]
    return ClusteredData(
        data,
        ratios,
        ClusterSummary(cluster_col, k, int(has_variant.sum())),
        int((~has_variant).sum()),
    )

"""Report lines for in-experiment covariates (CUNOPAC) and cluster-level analysis.

Both the text tables (:func:`splitlab.reports.analysis.summary_tables`) and the HTML report
(``templates/covariate_checks.html.j2``) show, per metric, each in-experiment covariate's
balance check (means per arm, difference, p-value, used or refused) and, for an analysis of
rows per randomisation unit, which column the rows were summed by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from splitlab.reports.numbers import number, p_value

__all__ = ["balance_notes", "cluster_note"]


def balance_notes(metric: Mapping[str, Any]) -> list[str]:
    """One sentence per in-experiment covariate of a metric's JSON (empty when none)."""
    out = []
    for check in metric.get("in_experiment_covariates") or []:
        verdict = "used" if check["used"] else "REFUSED (moved by the treatment)"
        diffs = ", ".join(
            f"{v} {number(d)} (p {p_value(check['p_values'][v])})"
            for v, d in check["differences"].items()
            if d is not None
        )
        out.append(f"in-experiment covariate {check['covariate']}: {verdict}; differences {diffs}")
    return out


def cluster_note(out: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (check, result) row of a cluster-level analysis (None for one row per unit)."""
    cluster = out.get("cluster")
    if not cluster:
        return None
    return (
        "clusters",
        f"{cluster['rows']} rows summed into {cluster['clusters']} {cluster['column']} "
        "clusters; every metric is a per-row mean (or ratio) by the delta method over clusters",
    )

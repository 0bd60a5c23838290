"""CUNOPAC in the analysis: in-experiment covariates, checked for balance, then used.

A metric's in-experiment covariates (``analyze(in_experiment_covariates=[...])``, a metric
definition's ``in_experiment_covariates`` in the analyzer) sit among its covariates; before any
method runs, :func:`checked_covariates` tests each for balance between arms
(:func:`splitlab.core.stats.balance.balance_check`) and leaves out the ones the treatment moved.
The methods (CUPED, regression, ratio CUPED, ``auto``) then see only the valid covariates, and
the result keeps every check as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from splitlab.core.errors import ArgumentError
from splitlab.core.stats.balance import BalanceCheck, balance_check
from splitlab.core.stats.sufficient import Moments

__all__ = ["check_in_experiment", "checked_covariates", "refusal_note"]


def check_in_experiment(
    columns: Mapping[str, Any],
    metrics: Sequence[str],
    covariates: Sequence[str],
    in_experiment: Sequence[str],
) -> tuple[str, ...]:
    """Validate ``in_experiment_covariates`` against the data and the other roles."""
    if isinstance(in_experiment, str):
        raise ArgumentError(
            "in_experiment_covariates",
            "in_experiment_covariates must be a list of column names, not a string",
        )
    names = tuple(str(c) for c in in_experiment)
    missing = [c for c in names if c not in columns]
    if missing:
        available = ", ".join(sorted(columns)[:20])
        raise ArgumentError(
            "in_experiment_covariates",
            f"in-experiment covariate column(s) {missing} not found in the data; "
            f"available columns: {available}",
        )
    clash = sorted(set(names) & (set(metrics) | set(covariates)))
    if clash:
        raise ArgumentError(
            "in_experiment_covariates",
            f"columns {clash} are in in_experiment_covariates and also a metric or a "
            "pre-exposure covariate; pick one role",
        )
    if len(set(names)) != len(names):
        raise ArgumentError("in_experiment_covariates", "in_experiment_covariates must be unique")
    return names


def checked_covariates(
    arms: Sequence[Moments],
    variants: Sequence[str],
    columns: Sequence[str],
    covariates: Sequence[str],
    in_experiment: Sequence[str],
    balance_alpha: float,
) -> tuple[list[int], list[BalanceCheck]]:
    """The column indices of the usable covariates and the balance check of each
    in-experiment one (pre-exposure covariates are used without a check)."""
    checks = [
        balance_check(arms, variants, columns.index(c), c, balance_alpha)
        for c in covariates
        if c in in_experiment
    ]
    refused = {c.covariate for c in checks if not c.used}
    return [columns.index(c) for c in covariates if c not in refused], checks


def refusal_note(checks: Sequence[BalanceCheck]) -> str:
    """The part of a metric's reason that names refused covariates ('' when none)."""
    refused = [c for c in checks if not c.used]
    if not refused:
        return ""
    parts = [
        f"{c.covariate} (moved by the treatment: p={c.p_value:.3g} < {c.balance_alpha:g})"
        for c in refused
    ]
    return "refused in-experiment covariate(s) " + ", ".join(parts)

"""What monitoring adds to an analysis: guardrail tests, power so far, days to the plan (pure).

``splitlab.analyze`` reports the guardrail tests when given ``guardrails`` and the power so far
when given ``mde``; the analyzer adds them to every results body.

Guardrails use a one-sided always-valid test, so the analyzer may look at every refresh
without inflating false alarms: with ``harm`` the relative effect in the harmful direction and
``margin`` the tolerated relative harm, the null is ``harm <= margin``; the evidence against it
is the mixture-martingale p-value of ``harm - margin`` (``splitlab.core.stats.sequential``), and the
guardrail is *violated* when that p-value falls below the experiment's alpha.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from splitlab.core.analysis.results import json_number
from splitlab.core.stats.comparison import Comparison
from splitlab.core.stats.power import power_at, runtime_days
from splitlab.core.stats.sequential import (
    always_valid_p_value,
    confidence_sequence_halfwidth,
    tuning_rho,
)

if TYPE_CHECKING:
    from splitlab.core.analysis.results import AnalysisResult

__all__ = [
    "GuardrailStatus",
    "days_to_planned",
    "guardrail_status",
    "guardrail_statuses",
    "power_at_planned",
    "power_so_far",
]


@dataclass(frozen=True)
class GuardrailStatus:
    metric: str
    variant: str
    margin: float
    harm: float | None
    """Relative effect in the harmful direction (0.03 = 3% worse)."""
    harm_lower: float | None
    """Lower bound of the always-valid confidence sequence of ``harm``."""
    always_valid_p_value: float | None
    violated: bool
    status: str
    """``ok``, ``violated`` or the comparison's status when it is not estimable."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def guardrail_status(
    metric: str,
    variant: str,
    comparison: Comparison,
    margin: float,
    lower_is_better: bool,
    alpha: float,
    tuning_n: float,
) -> GuardrailStatus:
    """The one-sided always-valid test of ``harm <= margin`` for one treatment."""
    if margin < 0 or not math.isfinite(margin):
        raise ValueError(f"margin for {metric!r} must be a finite number >= 0; got {margin}")
    c = comparison
    if c.status != "ok" or not (math.isfinite(c.rel_effect) and math.isfinite(c.rel_se)):
        status = c.status if c.status != "ok" else "not_estimable"
        return GuardrailStatus(metric, variant, margin, None, None, None, False, status)
    harm = c.rel_effect if lower_is_better else -c.rel_effect
    n = c.n_control + c.n_treatment
    rho = tuning_rho(alpha, tuning_n)
    half = confidence_sequence_halfwidth(c.rel_se, n, alpha, rho)
    p = always_valid_p_value(harm - margin, c.rel_se, n, rho) if harm > margin else 1.0
    violated = math.isfinite(p) and p < alpha
    return GuardrailStatus(
        metric,
        variant,
        margin,
        json_number(harm),
        json_number(harm - half),
        json_number(p),
        violated,
        "violated" if violated else "ok",
    )


def guardrail_statuses(
    result: AnalysisResult,
    margins: dict[str, float],
    lower_is_better: set[str],
    tuning_n: float,
) -> list[GuardrailStatus]:
    out = []
    for metric, margin in margins.items():
        if metric not in result.metrics:
            continue
        for variant, comp in result.metrics[metric].comparisons.items():
            out.append(
                guardrail_status(
                    metric,
                    variant,
                    comp.comparison,
                    margin,
                    metric in lower_is_better,
                    result.alpha,
                    tuning_n,
                )
            )
    return out


def power_so_far(
    result: AnalysisResult, metric: str, mde: float | None, alpha: float, scale: float = 1.0
) -> dict[str, float | None]:
    """Per treatment: power of the current sample to detect a relative effect of ``mde``;
    with ``scale`` the power of ``scale`` times the current sample at the per-unit spread seen
    so far (:func:`power_at_planned`)."""
    out: dict[str, float | None] = {}
    m = result.metrics[metric]
    for variant, comp in m.comparisons.items():
        c = comp.comparison
        value: float | None = None
        if (
            mde is not None
            and m.kind != "ratio"
            and c.n_control >= 2
            and c.n_treatment >= 1
            and math.isfinite(c.mean_control)
            and c.mean_control != 0
            and math.isfinite(c.se)
            and c.se > 0
        ):
            # The per-unit sd that explains the current standard error of the effect.
            sd = c.se / math.sqrt(1 / c.n_control + 1 / c.n_treatment)
            try:
                value = power_at(
                    c.n_control * scale,
                    c.mean_control,
                    mde * abs(c.mean_control),
                    metric_type="mean",
                    sd=sd,
                    alpha=alpha,
                    alternative=result.alternative,
                    treatment_ratio=c.n_treatment / c.n_control,
                )
            except ValueError:
                value = None
        out[variant] = None if value is None else json_number(value)
    return out


def power_at_planned(
    result: AnalysisResult,
    metric: str,
    mde: float | None,
    alpha: float,
    planned: int | None,
    total_units: int,
) -> dict[str, float | None]:
    """Per treatment: the power the planned sample size (``planned`` units in all) will have
    to detect ``mde`` on ``metric``, at the per-unit spread and split seen so far. Below the
    experiment's target power, the experiment is underpowered at its planned end (the spread
    is larger than the plan assumed): every value is None without a plan or units."""
    if planned is None or total_units <= 0:
        return dict.fromkeys(result.metrics[metric].comparisons)
    return power_so_far(result, metric, mde, alpha, scale=planned / total_units)


def days_to_planned(
    total_units: int,
    planned: int | None,
    first_exposure_at: datetime | None,
    now: datetime,
) -> dict[str, float | None]:
    """Enrolment rate so far and whole days until ``planned`` units (None when unknown)."""
    if first_exposure_at is None or total_units == 0:
        return {"units_per_day": None, "days_to_planned": None}
    elapsed_days = max((now - first_exposure_at).total_seconds() / 86400.0, 1.0 / 24.0)
    rate = total_units / elapsed_days
    days = None
    if planned is not None:
        days = runtime_days(max(0, planned - total_units), rate)
    return {"units_per_day": json_number(rate), "days_to_planned": days}

"""``synthetic_control``: the entry point that ties panel, method, inference and warnings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from splitlab.core.errors import ArgumentError
from splitlab.core.synth.counterfactual import METHODS, fit_counterfactual
from splitlab.core.synth.diagnostics import (
    fit_warnings,
    in_time_warning,
    near_exact_warning,
    stationarity_warnings,
    weight_warnings,
)
from splitlab.core.synth.inference import (
    PlaceboRun,
    in_time_placebo,
    inputs_for,
    interval_level,
    placebo_band,
    placebo_interval,
    placebo_p_value,
    rmspe,
    rmspe_ratio,
    run_placebos,
    usable_placebos,
)
from splitlab.core.synth.panel import CovariateSpec, build_panel
from splitlab.core.synth.result import PeriodEffect, SyntheticControlResult
from splitlab.core.synth.selection import select_method


def synthetic_control(
    data: pd.DataFrame,
    *,
    unit_col: str,
    time_col: str,
    outcome_col: str,
    treated: Any,
    intervention_time: Any,
    covariates: CovariateSpec = None,
    method: str = "auto",
    placebo: bool = True,
    alpha: float = 0.05,
    drop_incomplete: bool = False,
) -> SyntheticControlResult:
    """Estimate the effect of an intervention on ``treated`` from untreated donor units.

    Args:
        data: long panel, one row per unit and period.
        unit_col, time_col, outcome_col: column names; times are numbers or ISO dates.
        treated: the treated unit, or a list of units (their mean is the treated series).
        intervention_time: the first treated period.
        covariates: columns averaged over the pre-period (or ``{column: (first, last)}``) as
            predictors for the classic method, whose importance is chosen by nested optimisation.
        method: ``"auto"``, ``"classic"``, ``"augmented"`` or ``"forecast"``.
        placebo: run in-space placebos for the p-value and the interval.
        alpha: 1 - the interval's level.
        drop_incomplete: drop donor units with missing cells instead of failing.
    """
    if method != "auto" and method not in METHODS:
        raise ArgumentError(
            "method", f"method: {method!r} is unknown; use one of auto, {', '.join(METHODS)}"
        )
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ArgumentError("alpha", f"alpha: must be strictly between 0 and 1, got {alpha!r}")
    panel, notes = build_panel(
        data,
        unit_col=unit_col,
        time_col=time_col,
        outcome_col=outcome_col,
        treated=treated,
        intervention_time=intervention_time,
        covariates=covariates,
        drop_incomplete=drop_incomplete,
    )
    n_pre, n_post = panel.n_pre, panel.n_periods - panel.n_pre
    inputs = inputs_for(panel, panel.treated, panel.donors)
    selection = None
    if method == "auto":
        chosen = select_method(inputs)
        method, selection = chosen.method, chosen.reason
        notes.insert(0, chosen.reason)
    if covariates is not None and method != "classic":
        notes.append(f"covariates are used by the classic method only; {method} ignored them")

    fit = fit_counterfactual(method, inputs)
    actual = panel.treated_outcome()
    gaps = actual - fit.values
    att = float(np.mean(gaps[n_pre:]))
    pre_rmspe, post_rmspe = rmspe(gaps[:n_pre]), rmspe(gaps[n_pre:])
    baseline = float(np.mean(fit.values[n_pre:]))
    rel_att = att / baseline if baseline != 0 else math.nan
    if baseline == 0:
        notes.append("rel_att is undefined: the post-period counterfactual averages zero")

    p_value = ci_lower = ci_upper = level = math.nan
    band = None
    runs: list[PlaceboRun] = []
    if placebo:
        runs, placebo_notes = run_placebos(panel, method)
        notes.extend(placebo_notes)
        p_value = placebo_p_value(rmspe_ratio(post_rmspe, pre_rmspe), [r.ratio for r in runs])
        ci_lower, ci_upper, interval_note = placebo_interval(att, runs, n_pre, alpha)
        if interval_note:
            notes.append(interval_note)
        if math.isfinite(ci_lower):
            level = interval_level(usable_placebos(runs, n_pre), alpha)
        band = placebo_band(runs, pre_rmspe, alpha)
        if len(runs) + 1 < 1 / alpha:
            notes.append(
                f"with {len(runs)} donors the smallest attainable p-value is "
                f"{1 / (len(runs) + 1):.3g}, not below alpha={alpha:g}"
            )
    else:
        notes.append("placebo=False: no p-value or interval (they come from in-space placebos)")

    notes.extend(fit_warnings(inputs.y_pre, fit.values[:n_pre], inputs.donors[:n_pre]))
    notes.extend(weight_warnings(fit.weights, [panel.units[d] for d in panel.donors], method))
    near_exact = near_exact_warning(inputs.y_pre, fit.values[:n_pre], len(panel.donors))
    if near_exact:
        notes.append(near_exact)
    notes.extend(stationarity_warnings(inputs.y_pre))
    in_time = in_time_placebo(inputs, method, n_post)
    if in_time is not None:
        bounds = None
        if placebo and math.isfinite(ci_lower):
            bounds = (att - ci_upper, att - ci_lower)  # the placebo error range used above
        warning = in_time_warning(
            in_time.att, in_time.pre_rmspe, att, n_pre - in_time.start_index, bounds
        )
        if warning:
            notes.append(warning)

    effects = [
        PeriodEffect(
            time=panel.times[t],
            actual=float(actual[t]),
            counterfactual=float(fit.values[t]),
            effect=float(gaps[t]),
            post=t >= n_pre,
        )
        for t in range(panel.n_periods)
    ]
    return SyntheticControlResult(
        method=method,
        weights={panel.units[d]: float(w) for d, w in zip(panel.donors, fit.weights, strict=True)},
        att=att,
        att_ci_lower=ci_lower,
        att_ci_upper=ci_upper,
        rel_att=rel_att,
        p_value=p_value,
        pre_rmspe=pre_rmspe,
        post_rmspe=post_rmspe,
        effects=effects,
        warnings=notes,
        alpha=float(alpha),
        interval_level=level,
        treated=[panel.units[i] for i in panel.treated],
        intervention_time=panel.times[n_pre],
        selection=selection,
        placebos=runs,
        in_time_placebo=in_time,
        band_lower=None if band is None else band[0].tolist(),
        band_upper=None if band is None else band[1].tolist(),
    )

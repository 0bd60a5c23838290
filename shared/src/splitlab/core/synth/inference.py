"""Inference for a synthetic control: in-space and in-time placebos and the ATT interval.

- In-space placebo (Abadie et al. 2010): every donor in turn is treated as if it were the
  treated unit, with the other donors as its pool and the same method. The p-value is the share
  of units (the treated one included) whose post/pre RMSPE ratio is at least the treated one's:
  ``p = (1 + #{j: r_j >= r_treated}) / (J + 1)``, exact under exchangeability of the units.
- Interval for the average effect: the placebo ATTs are draws of the estimation error under no
  effect, so with ``e_(k)`` their order statistics the interval is
  ``[att - e_(k_hi), att - e_(k_lo)]``, ``k_lo = floor(alpha/2 (J+1))`` and
  ``k_hi = ceil((1 - alpha/2)(J+1))`` (a split-conformal rank rule, exact under exchangeability).
  With too few donors the extremes are used and the level attained (``1 - 2/(J+1)``) reported.
  Studentising by each unit's pre-period RMSPE was rejected: flexible methods can fit a
  placebo's pre-period almost exactly, and dividing by that near-zero RMSPE explodes the interval.
- In-time placebo: the intervention is moved back into the pre-period and the same method is
  fit; a clear "effect" before anything happened means the counterfactual does not extrapolate.
"""

from __future__ import annotations

import math
import warnings as pywarnings
from dataclasses import dataclass

import numpy as np

from splitlab.core.synth.counterfactual import FloatArray, Inputs, fit_counterfactual
from splitlab.core.synth.panel import MIN_PRE_PERIODS, Panel

PLACEBO_BAND_MSPE_RATIO = 5.0
"""Placebos whose pre-period MSPE exceeds this multiple of the treated one's are left out of
the plotted band (as in Abadie et al. 2010), because their fit says nothing about the treated."""


@dataclass(frozen=True)
class PlaceboRun:
    """One donor treated as if it were the treated unit."""

    unit: str
    effects: FloatArray
    pre_rmspe: float
    post_rmspe: float

    @property
    def ratio(self) -> float:
        return rmspe_ratio(self.post_rmspe, self.pre_rmspe)

    def att(self, n_pre: int) -> float:
        return float(np.mean(self.effects[n_pre:]))


@dataclass(frozen=True)
class InTimePlacebo:
    """The effect estimated at a fake intervention inside the pre-period."""

    start_index: int
    """Index of the fake first treated period."""
    att: float
    pre_rmspe: float
    """Pre-period RMSPE of the fit that ended at the fake intervention."""


def inputs_for(panel: Panel, treated_rows: list[int], donor_rows: list[int]) -> Inputs:
    """The method inputs for ``treated_rows`` (averaged) against ``donor_rows``."""
    y = panel.outcomes[treated_rows].mean(axis=0)
    predictors_treated = predictors_donors = None
    if panel.predictors is not None:
        predictors_treated = panel.predictors[treated_rows].mean(axis=0)
        predictors_donors = panel.predictors[donor_rows].T
    return Inputs(
        y_pre=np.asarray(y[: panel.n_pre], dtype=np.float64),
        donors=np.asarray(panel.outcomes[donor_rows].T, dtype=np.float64),
        n_pre=panel.n_pre,
        predictors_treated=predictors_treated,
        predictors_donors=predictors_donors,
        calendar=panel.calendar,
    )


def rmspe(gaps: FloatArray) -> float:
    return float(np.sqrt(np.mean(gaps**2))) if gaps.size else math.nan


def rmspe_ratio(post: float, pre: float) -> float:
    if pre > 0:
        return post / pre
    return math.inf if post > 0 else math.nan


def run_placebos(panel: Panel, method: str) -> tuple[list[PlaceboRun], list[str]]:
    """Fit ``method`` with each donor as the treated unit; returns the runs and any warnings."""
    runs: list[PlaceboRun] = []
    notes: list[str] = []
    for row in panel.donors:
        pool = [d for d in panel.donors if d != row]
        inputs = inputs_for(panel, [row], pool)
        try:
            with pywarnings.catch_warnings():
                pywarnings.simplefilter("ignore", category=RuntimeWarning)
                fit = fit_counterfactual(method, inputs)
        except (np.linalg.LinAlgError, ValueError) as exc:  # pragma: no cover - numerical
            notes.append(f"placebo for {panel.units[row]} failed ({exc}); left out")
            continue
        effects = panel.outcomes[row] - fit.values
        runs.append(
            PlaceboRun(
                unit=panel.units[row],
                effects=np.asarray(effects, dtype=np.float64),
                pre_rmspe=rmspe(effects[: panel.n_pre]),
                post_rmspe=rmspe(effects[panel.n_pre :]),
            )
        )
    return runs, notes


def placebo_p_value(ratio: float, placebo_ratios: list[float]) -> float:
    """``(1 + #{r_j >= ratio}) / (J + 1)``; NaN when the ratio is undefined."""
    if math.isnan(ratio) or not placebo_ratios:
        return math.nan
    at_least = sum(1 for r in placebo_ratios if not math.isnan(r) and r >= ratio)
    return (1 + at_least) / (1 + len(placebo_ratios))


def interval_level(n_placebos: int, alpha: float) -> float:
    """The level the placebo interval really has with ``n_placebos`` usable placebos:
    ``1 - alpha`` when there are enough, else the placebo range's ``1 - 2 / (n + 1)``
    (NaN below 2 placebos: no interval)."""
    if n_placebos < 2:
        return math.nan
    k_lo = math.floor(alpha / 2 * (n_placebos + 1))
    k_hi = math.ceil((1 - alpha / 2) * (n_placebos + 1))
    if k_lo < 1 or k_hi > n_placebos:
        return 1 - 2 / (n_placebos + 1)
    return 1 - alpha


def usable_placebos(runs: list[PlaceboRun], n_pre: int) -> int:
    return sum(1 for r in runs if math.isfinite(r.att(n_pre)))


def placebo_interval(
    att: float, runs: list[PlaceboRun], n_pre: int, alpha: float
) -> tuple[float, float, str | None]:
    """The placebo interval for the ATT and a note when its level is below ``1 - alpha``."""
    scores = sorted(r.att(n_pre) for r in runs if math.isfinite(r.att(n_pre)))
    n = len(scores)
    if n < 2 or not math.isfinite(att):
        return math.nan, math.nan, "too few usable placebos for an interval"
    k_lo = math.floor(alpha / 2 * (n + 1))
    k_hi = math.ceil((1 - alpha / 2) * (n + 1))
    note = None
    if k_lo < 1 or k_hi > n:
        k_lo, k_hi = max(k_lo, 1), min(k_hi, n)
        level = 1 - 2 / (n + 1)
        note = (
            f"with {n} placebos the interval is the placebo range, a {level:.1%} interval "
            f"rather than {1 - alpha:.1%}; more donors would give the nominal level"
        )
    lower = att - scores[k_hi - 1]
    upper = att - scores[k_lo - 1]
    return float(lower), float(upper), note


def placebo_band(
    runs: list[PlaceboRun], pre_rmspe: float, alpha: float
) -> tuple[FloatArray, FloatArray] | None:
    """Per-period ``alpha/2`` and ``1 - alpha/2`` quantiles of placebo gaps of well-fit placebos."""
    limit = PLACEBO_BAND_MSPE_RATIO * pre_rmspe**2
    kept = [r.effects for r in runs if r.pre_rmspe**2 <= limit] if pre_rmspe > 0 else []
    if len(kept) < 2:
        kept = [r.effects for r in runs]
    if len(kept) < 2:
        return None
    gaps = np.vstack(kept)
    lower = np.quantile(gaps, alpha / 2, axis=0)
    upper = np.quantile(gaps, 1 - alpha / 2, axis=0)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def in_time_placebo(inputs: Inputs, method: str, n_post: int) -> InTimePlacebo | None:
    """Refit with a fake intervention ``min(n_post, n_pre // 3)`` periods before the real one."""
    shift = min(n_post, max(1, inputs.n_pre // 3))
    fake_pre = inputs.n_pre - shift
    if fake_pre < MIN_PRE_PERIODS:
        return None
    truncated = inputs.truncated(n_periods=inputs.n_pre, n_pre=fake_pre)
    fit = fit_counterfactual(method, truncated)
    gaps = inputs.y_pre - fit.values
    return InTimePlacebo(
        start_index=fake_pre,
        att=float(np.mean(gaps[fake_pre:])),
        pre_rmspe=rmspe(gaps[:fake_pre]),
    )

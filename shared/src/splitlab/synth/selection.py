"""``method="auto"``: choose the method that best predicts held-out pre-periods, and say why.

Each candidate is fit on the pre-period minus its last quarter (at least two periods when the
pre-period allows) and judged by its RMSPE on that held-out quarter, which none of them saw.
In-sample pre-period fit would always favour the most flexible method; held-out fit does not.
Ties (within 1%) go to the simpler method, in the order classic, augmented, forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from splitlab.synth.counterfactual import METHODS, Inputs, fit_counterfactual

MIN_TRAIN_PERIODS = {"classic": 2, "augmented": 4, "forecast": 6}
"""Fewest training periods each method needs to be judged on held-out periods."""


@dataclass(frozen=True)
class Selection:
    method: str
    holdout_rmspe: dict[str, float]
    n_holdout: int
    reason: str


def holdout_size(n_pre: int) -> int:
    return max(1, min(n_pre - 2, max(2, n_pre // 4)))


def select_method(inputs: Inputs) -> Selection:
    """Fit every method on the early pre-period and pick the best on the held-out rest."""
    n_hold = holdout_size(inputs.n_pre)
    n_train = inputs.n_pre - n_hold
    train = inputs.truncated(n_periods=inputs.n_pre, n_pre=n_train)
    held_out = inputs.y_pre[n_train:]
    scores: dict[str, float] = {}
    for method in METHODS:
        if n_train < MIN_TRAIN_PERIODS[method]:
            continue
        fit = fit_counterfactual(method, train)
        scores[method] = float(np.sqrt(np.mean((held_out - fit.values[n_train:]) ** 2)))
    finite = {m: s for m, s in scores.items() if math.isfinite(s)}
    if not finite:
        return Selection(
            "classic",
            scores,
            n_hold,
            "auto chose classic: no method could be judged on held-out pre-periods",
        )
    best = min(finite.values())
    chosen = next(m for m in METHODS if m in finite and finite[m] <= best * 1.01 + 1e-12)
    others = ", ".join(f"{m} {s:.4g}" for m, s in scores.items() if m != chosen)
    skipped = [m for m in METHODS if m not in scores]
    reason = (
        f"auto chose {chosen}: lowest RMSPE on the last {n_hold} pre-periods held out of the fit "
        f"({chosen} {scores[chosen]:.4g}{'; ' + others if others else ''})"
    )
    if skipped:
        reason += f"; {', '.join(skipped)} skipped: too few pre-periods to judge"
    return Selection(chosen, scores, n_hold, reason)

"""``method="auto"``: choose the method that best predicts held-out pre-periods, and say why.

The rule (issue 21; decisions and rejected alternatives in ``docs/synthetic_control.md``):

1. **Rolling origins.** Every method is refit at several origins ``o`` in the second half of
   the pre-period, each time on periods ``0..o-1`` only, and predicts the next ``horizon``
   periods it did not see (``horizon = min(n_post, max(1, n_pre // 4))``, cut at the end of the
   pre-period). A method's score is its held-out RMSPE pooled over all origins; a single window
   of two periods, as before, is one draw of noise.
2. **Overfit refusal.** A method whose held-out RMSPE is more than ``OVERFIT_RATIO`` times its
   in-sample RMSPE on the same training windows fits the pre-period in a way that does not
   carry over (the forecast interpolating a few periods with many donors is the typical case);
   it is refused, whatever its score.
3. **A ladder from the simplest method.** Start from classic (convex weights); move to the
   augmented method (weights still summing to one), then to the forecast (unconstrained), only
   when the next one wins clearly (pooled RMSPE at most ``CLEAR_WIN`` times the current
   choice's) and stably (a lower error at ``STABLE_SHARE`` of at least ``MIN_ORIGINS``
   origins). With few periods the scores are noisy, and a flexible method that is only a
   little better on them is usually worse after the intervention.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from splitlab.core.synth.counterfactual import METHODS, FloatArray, Inputs, fit_counterfactual

MIN_TRAIN_PERIODS = 3
"""Fewest training periods at any origin."""
MAX_ORIGINS = 8
"""At most this many origins (the latest ones) are used, to bound the cost on long panels."""
OVERFIT_RATIO = 10.0
"""Refuse a method whose held-out RMSPE exceeds its in-sample RMSPE by more than this factor."""
CLEAR_WIN = 0.8
"""A more flexible method must have a pooled held-out RMSPE at most this share of the current
choice's ..."""
STABLE_SHARE = 2 / 3
"""... and a lower held-out error at this share of origins ..."""
MIN_ORIGINS = 3
"""... of at least this many origins (with fewer, auto keeps classic)."""


@dataclass(frozen=True)
class Selection:
    """What ``auto`` chose and the evidence, for the report."""

    method: str
    scores: dict[str, float]
    """Held-out RMSPE pooled over every origin, per judged method."""
    in_sample: dict[str, float]
    """In-sample RMSPE of the same fits on their training windows, pooled."""
    origins: tuple[int, ...]
    """Number of training periods at each origin."""
    horizon: int
    refused: dict[str, str] = field(default_factory=dict)
    """Methods judged but not eligible, with why."""
    reason: str = ""


def rolling_origins(n_pre: int, n_post: int) -> tuple[tuple[int, ...], int]:
    """The origins (training lengths) and the forecast horizon used to judge methods."""
    horizon = min(max(n_post, 1), max(1, n_pre // 4))
    first = max(MIN_TRAIN_PERIODS, math.ceil(n_pre / 2))
    origins = tuple(range(first, n_pre))[-MAX_ORIGINS:]
    return origins, horizon


def _rmse(values: FloatArray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else math.nan


def judge(
    method: str, inputs: Inputs, origins: tuple[int, ...], horizon: int
) -> tuple[list[float], float]:
    """Refit ``method`` at every origin: its held-out RMSPE per origin and its in-sample RMSPE
    pooled over the training windows."""
    per_origin: list[float] = []
    in_sample: list[FloatArray] = []
    for origin in origins:
        end = min(origin + horizon, inputs.n_pre)
        train = inputs.truncated(n_periods=end, n_pre=origin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            fit = fit_counterfactual(method, train)
        out = inputs.y_pre[origin:end] - fit.values[origin:end]
        per_origin.append(_rmse(out))
        in_sample.append(inputs.y_pre[:origin] - fit.values[:origin])
    return per_origin, _rmse(np.concatenate(in_sample))


def select_method(inputs: Inputs) -> Selection:
    """Judge every method over rolling origins and apply the rule in the module docstring."""
    n_post = inputs.donors.shape[0] - inputs.n_pre
    origins, horizon = rolling_origins(inputs.n_pre, n_post)
    if not origins:
        return Selection(
            "classic",
            {},
            {},
            origins,
            horizon,
            reason=(
                f"auto chose classic: with {inputs.n_pre} pre-periods no method can be judged "
                f"on held-out periods (at least {MIN_TRAIN_PERIODS + 1} are needed)"
            ),
        )
    per_origin: dict[str, list[float]] = {}
    in_sample: dict[str, float] = {}
    for method in METHODS:
        per_origin[method], in_sample[method] = judge(method, inputs, origins, horizon)
    return apply_rule(per_origin, in_sample, origins, horizon)


def apply_rule(
    per_origin: dict[str, list[float]],
    in_sample: dict[str, float],
    origins: tuple[int, ...],
    horizon: int,
) -> Selection:
    """The rule of the module docstring on measured errors: per method, the held-out RMSPE at
    each origin and the pooled in-sample RMSPE (every origin holds ``horizon`` periods except
    where the pre-period ends, so the pooled score weights origins by their periods)."""
    sizes = [min(horizon, origins[-1] + 1 - o) if origins else 0 for o in origins]
    scores = {
        m: float(np.sqrt(sum(e**2 * n for e, n in zip(errors, sizes, strict=True)) / sum(sizes)))
        for m, errors in per_origin.items()
    }
    refused: dict[str, str] = {}
    for method in METHODS[1:]:  # classic is the base of the ladder, never refused
        score, fit = scores[method], in_sample[method]
        if not math.isfinite(score):
            refused[method] = "refused: its held-out error is not finite"
        elif score > OVERFIT_RATIO * fit:
            ratio = score / fit if fit > 0 else math.inf
            refused[method] = (
                f"refused as overfit: in-sample RMSPE {fit:.4g} against {score:.4g} held out "
                f"({ratio:.3g}x, limit {OVERFIT_RATIO:g}x)"
            )
    chosen = "classic"
    steps: list[str] = []
    for method in METHODS[1:]:
        if method in refused:
            continue
        wins = sum(m < c for m, c in zip(per_origin[method], per_origin[chosen], strict=True))
        relative = scores[method] / scores[chosen] if scores[chosen] > 0 else math.inf
        clear = relative <= CLEAR_WIN
        stable = len(origins) >= MIN_ORIGINS and wins / len(origins) >= STABLE_SHARE
        if clear and stable:
            steps.append(
                f"{method} beats {chosen} clearly ({relative:.0%} of its error) and stably "
                f"(at {wins} of {len(origins)} origins)"
            )
            chosen = method
        elif scores[method] < scores[chosen]:
            steps.append(
                f"{method} is better than {chosen} but not clearly and stably enough "
                f"({relative:.0%} of its error, at {wins} of {len(origins)} origins; needs at "
                f"most {CLEAR_WIN:.0%}, at {STABLE_SHARE:.0%} of at least {MIN_ORIGINS} origins)"
            )
    listed = ", ".join(f"{m} {scores[m]:.4g}" for m in METHODS)
    reason = (
        f"auto chose {chosen}: held-out RMSPE over {len(origins)} rolling origins, "
        f"{horizon} period(s) ahead ({listed})"
    )
    for step in steps:
        reason += f"; {step}"
    for method, why in refused.items():
        reason += f"; {method} {why}"
    return Selection(chosen, scores, in_sample, origins, horizon, refused, reason)

"""Simulated panels with a known effect, for calibration studies, tests and benchmarks.

The outcome follows an interactive fixed-effects (factor) model with unit and time effects:
``y_it = alpha_i + delta_t + lambda_i' f_t + eps_it``, with AR(1) factors ``f_t``, and the
treated units get ``effect`` added from the intervention on. Every unit is drawn from the same
distribution, so under no effect the treated unit is exchangeable with the donors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from splitlab.core.errors import ArgumentError


def factor_panel(
    n_units: int,
    n_periods: int,
    n_pre: int,
    *,
    effect: float = 0.0,
    n_factors: int = 2,
    noise: float = 1.0,
    rho: float = 0.7,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """A long panel ``unit, time, outcome`` whose unit ``"u0"`` is treated from ``time = n_pre``.

    ``time`` runs 0..n_periods-1; ``effect`` is added to u0's outcome in every post period.
    """
    if n_units < 3:
        raise ArgumentError(
            "n_units", "n_units: at least 3 units are needed (one treated, two donors)"
        )
    if not 0 < n_pre < n_periods:
        raise ArgumentError("n_pre", "n_pre: must be between 1 and n_periods - 1")
    rng = np.random.default_rng(seed)
    unit_effect = rng.normal(0.0, 1.0, n_units)
    time_effect = np.cumsum(rng.normal(0.0, 0.3, n_periods))
    factors = np.zeros((n_periods, n_factors))
    factors[0] = rng.normal(0.0, 1.0, n_factors)
    for t in range(1, n_periods):
        factors[t] = rho * factors[t - 1] + rng.normal(0.0, np.sqrt(1 - rho**2), n_factors)
    loadings = rng.normal(1.0, 0.5, (n_units, n_factors))
    outcome = (
        unit_effect[:, None]
        + time_effect[None, :]
        + 2.0 * loadings @ factors.T
        + rng.normal(0.0, noise, (n_units, n_periods))
    )
    outcome[0, n_pre:] += effect
    units = np.repeat([f"u{i}" for i in range(n_units)], n_periods)
    times = np.tile(np.arange(n_periods), n_units)
    return pd.DataFrame({"unit": units, "time": times, "outcome": outcome.ravel()})


def trending_panel(
    n_donors: int,
    n_pre: int,
    n_post: int,
    *,
    effect_share: float = 0.2,
    growth: float = 0.08,
    growth_spread: float = 0.02,
    factor_share: float = 0.05,
    noise: float = 0.01,
    seed: int | np.random.Generator = 0,
) -> tuple[pd.DataFrame, float]:
    """A short panel with a strong common trend and units of very different sizes.

    Shaped like the annual state panels synthetic control is known for (issue 21: eight
    pre-periods, fifty donors, an outcome in the tens of thousands that grows every year):
    ``y_it = 10,000 s_i (1 + g_i t + factor_share l_i' f_t) (1 + noise / sqrt(s_i) e_it)``,
    with sizes ``s_i`` log-normal (about a twenty-fold range between small and large units),
    growth rates ``g_i = growth (1 + growth_spread z_i)``, two AR(1) factors ``f_t`` (rho 0.7)
    with standard-normal loadings, and noise that is relatively larger for small units (as
    counts are). Every unit is drawn from the same distribution. Unit ``"u0"`` is treated
    from ``time = n_pre``: ``effect_share`` of its post-period mean is added to every post
    period, and that amount is returned as the true average effect.

    Returns ``(long panel with columns unit, time, outcome; the true effect)``.
    """
    if n_donors < 2:
        raise ArgumentError("n_donors", "n_donors: at least 2 donors are needed")
    if n_pre < 2 or n_post < 1:
        raise ValueError("n_pre, n_post: need at least 2 pre-periods and 1 post-period")
    rng = np.random.default_rng(seed)
    n_units, n_periods = n_donors + 1, n_pre + n_post
    size = np.exp(rng.normal(0.0, 0.75, n_units))
    rate = growth * (1 + growth_spread * rng.normal(0.0, 1.0, n_units))
    factors = np.zeros((n_periods, 2))
    factors[0] = rng.normal(0.0, 1.0, 2)
    for t in range(1, n_periods):
        factors[t] = 0.7 * factors[t - 1] + rng.normal(0.0, np.sqrt(1 - 0.7**2), 2)
    loadings = rng.normal(0.0, 1.0, (n_units, 2))
    t_idx = np.arange(n_periods, dtype=np.float64)
    shape = 1 + rate[:, None] * t_idx[None, :] + factor_share * loadings @ factors.T
    relative_noise = (noise / np.sqrt(size))[:, None] * rng.normal(0.0, 1.0, shape.shape)
    outcome = 10_000.0 * size[:, None] * shape * (1 + relative_noise)
    truth = float(effect_share * outcome[0, n_pre:].mean())
    outcome[0, n_pre:] += truth
    units = np.repeat([f"u{i}" for i in range(n_units)], n_periods)
    times = np.tile(np.arange(n_periods), n_units)
    frame = pd.DataFrame({"unit": units, "time": times, "outcome": outcome.ravel()})
    return frame, truth

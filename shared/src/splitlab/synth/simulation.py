"""Simulated panels with a known effect, for calibration studies, tests and benchmarks.

The outcome follows an interactive fixed-effects (factor) model with unit and time effects:
``y_it = alpha_i + delta_t + lambda_i' f_t + eps_it``, with AR(1) factors ``f_t``, and the
treated units get ``effect`` added from the intervention on. Every unit is drawn from the same
distribution, so under no effect the treated unit is exchangeable with the donors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
        raise ValueError("n_units: at least 3 units are needed (one treated, two donors)")
    if not 0 < n_pre < n_periods:
        raise ValueError("n_pre: must be between 1 and n_periods - 1")
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

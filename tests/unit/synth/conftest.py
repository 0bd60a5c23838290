"""Small panels shared by the synthetic control tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def long_panel(
    outcomes: np.ndarray, units: list[str] | None = None, start: int = 0
) -> pd.DataFrame:
    """A long table from a units x periods matrix (unit names u0, u1, ... by default)."""
    n_units, n_periods = outcomes.shape
    names = units or [f"u{i}" for i in range(n_units)]
    return pd.DataFrame(
        {
            "unit": np.repeat(names, n_periods),
            "time": np.tile(np.arange(start, start + n_periods), n_units),
            "outcome": outcomes.ravel(),
        }
    )


@pytest.fixture
def convex_panel() -> pd.DataFrame:
    """u0 is exactly 0.6 u1 + 0.4 u2 before t=20 and 5 higher afterwards; 8 noisy donors."""
    rng = np.random.default_rng(7)
    donors = np.cumsum(rng.normal(0, 1, (8, 30)), axis=1) + rng.normal(0, 3, (8, 1))
    treated = 0.6 * donors[0] + 0.4 * donors[1]
    treated[20:] += 5.0
    return long_panel(np.vstack([treated, donors]))

"""What every counterfactual method receives and returns, and the dispatch by method name.

A method sees one treated series (pre-period only, so it cannot peek at the outcome it is
judged on), the donors' full series, optional predictors and calendar features, and returns the
counterfactual for every period plus its donor weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from splitlab.core.errors import ArgumentError

FloatArray = npt.NDArray[np.float64]

METHODS: tuple[str, ...] = ("classic", "augmented", "forecast")
"""Methods ``auto`` chooses between."""


@dataclass(frozen=True)
class Inputs:
    """One treated series against its donor pool."""

    y_pre: FloatArray
    """Treated outcome in the pre-period, shape (n_pre,)."""
    donors: FloatArray
    """Donor outcomes in every period, shape (n_periods, n_donors)."""
    n_pre: int
    predictors_treated: FloatArray | None = None
    """Covariates of the treated unit, shape (n_covariates,)."""
    predictors_donors: FloatArray | None = None
    """Covariates of the donors, shape (n_covariates, n_donors)."""
    calendar: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    """Calendar features for every period, shape (n_periods, n_features)."""

    def truncated(self, n_periods: int, n_pre: int) -> Inputs:
        """The same problem on the first ``n_periods`` periods with ``n_pre`` pre-periods."""
        calendar = self.calendar[:n_periods] if self.calendar.size else self.calendar
        return replace(
            self,
            y_pre=self.y_pre[:n_pre],
            donors=self.donors[:n_periods],
            n_pre=n_pre,
            calendar=calendar,
        )


@dataclass(frozen=True)
class Counterfactual:
    """A fitted counterfactual: ``values[t]`` estimates the treated outcome without treatment."""

    values: FloatArray
    weights: FloatArray
    """Donor weights (classic: on the simplex; augmented: may be negative; forecast: the
    regression coefficients of the donors in outcome units)."""
    intercept: float = 0.0
    details: dict[str, float] = field(default_factory=dict)
    """Tuning chosen by the fit (e.g. the ridge penalty), for reports."""

    def pre_rmspe(self, y_pre: FloatArray) -> float:
        gap = y_pre - self.values[: len(y_pre)]
        return float(np.sqrt(np.mean(gap**2)))


def fit_counterfactual(method: str, inputs: Inputs) -> Counterfactual:
    """Fit ``method`` (one of ``METHODS``) on ``inputs``."""
    return _fitter(method)(inputs)


def _fitter(method: str) -> Callable[[Inputs], Counterfactual]:
    # Imported here so each method module can import this one without a cycle.
    from splitlab.core.synth.augmented import fit_augmented
    from splitlab.core.synth.forecast import fit_forecast
    from splitlab.core.synth.weights import fit_classic

    fitters: dict[str, Callable[[Inputs], Counterfactual]] = {
        "classic": fit_classic,
        "augmented": fit_augmented,
        "forecast": fit_forecast,
    }
    if method not in fitters:
        raise ArgumentError(
            "method", f"method: {method!r} is unknown; use one of auto, {', '.join(METHODS)}"
        )
    return fitters[method]

"""ML forecast counterfactual: the treated outcome predicted from donor outcomes and calendar.

A ridge regression, trained on the pre-period only, of the treated outcome on the donors'
contemporaneous outcomes and seasonal calendar dummies (when the dates allow them), with
features standardised on the pre-period and the penalty chosen by efficient leave-one-out
cross-validation (``RidgeCV``). The fitted model forecasts the post-period. Unlike the classic
weights the coefficients are unconstrained, so the forecast can extrapolate outside the donors'
range, which is its strength (levels and scales need not match) and its risk.

The penalties searched are relative to the scale of the standardised design (its mean non-zero
squared singular value, which grows with the number of donors and of pre-periods), and only
penalties that leave the fit at most half of the pre-period's degrees of freedom are searched:
with fewer pre-periods than donors a small penalty interpolates the pre-period exactly, and
leave-one-out on a handful of periods cannot see that it will not carry over.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import RidgeCV

from splitlab.core.synth.counterfactual import Counterfactual, FloatArray, Inputs

RELATIVE_ALPHAS = np.logspace(-3, 3, 25)
"""Ridge penalties searched, as multiples of the mean non-zero squared singular value of the
standardised, centred pre-period design."""
MAX_DF_SHARE = 0.5
"""Largest share of the pre-period's degrees of freedom (``n_pre - 1`` after the intercept)
that the fit may use, in effective parameters ``sum(d^2 / (d^2 + alpha))``."""


def penalty_grid(standardised: FloatArray) -> FloatArray:
    """The penalties searched for a centred, standardised design (periods x features)."""
    singular = np.linalg.svd(standardised, compute_uv=False)
    squares = singular[singular > 1e-9 * max(float(singular.max(initial=0.0)), 1e-300)] ** 2
    if squares.size == 0:
        return np.asarray(RELATIVE_ALPHAS, dtype=np.float64)
    alphas = float(squares.mean()) * RELATIVE_ALPHAS
    limit = max(1.0, MAX_DF_SHARE * (standardised.shape[0] - 1))
    df = (squares[None, :] / (squares[None, :] + alphas[:, None])).sum(axis=1)
    kept = alphas[df <= limit]
    return np.asarray(kept if kept.size else alphas[-1:], dtype=np.float64)


def fit_forecast(inputs: Inputs) -> Counterfactual:
    """Fit the ridge forecast on the pre-period and predict every period."""
    n_donors = inputs.donors.shape[1]
    features = inputs.donors
    if inputs.calendar.size:
        features = np.column_stack([inputs.donors, inputs.calendar])
    train = features[: inputs.n_pre]
    center = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    standardised = (train - center) / scale
    alphas = penalty_grid(standardised)
    model = RidgeCV(alphas=alphas, fit_intercept=True)
    with warnings.catch_warnings():
        # Singular fold matrices are expected with many donors and few periods; the ridge
        # penalty is exactly what makes the solution well defined.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        model.fit(standardised, inputs.y_pre)
    coef = np.asarray(model.coef_, dtype=np.float64) / scale
    intercept = float(model.intercept_) - float(coef @ center)
    values = intercept + features @ coef
    return Counterfactual(
        values=np.asarray(values, dtype=np.float64),
        weights=coef[:n_donors],
        intercept=intercept,
        details={"ridge_alpha": float(model.alpha_), "ridge_alpha_min": float(alphas[0])},
    )

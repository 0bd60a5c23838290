"""ML forecast counterfactual: the treated outcome predicted from donor outcomes and calendar.

A ridge regression, trained on the pre-period only, of the treated outcome on the donors'
contemporaneous outcomes and seasonal calendar dummies (when the dates allow them), with
features standardised on the pre-period and the penalty chosen by efficient leave-one-out
cross-validation (``RidgeCV``). The fitted model forecasts the post-period. Unlike the classic
weights the coefficients are unconstrained, so the forecast can extrapolate outside the donors'
range, which is its strength (levels and scales need not match) and its risk.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import RidgeCV

from splitlab.synth.counterfactual import Counterfactual, Inputs

ALPHAS = np.logspace(-2, 4, 25)
"""Ridge penalties searched, for standardised features."""


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
    model = RidgeCV(alphas=ALPHAS, fit_intercept=True)
    with warnings.catch_warnings():
        # Singular fold matrices are expected with many donors and few periods; the ridge
        # penalty is exactly what makes the solution well defined.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        model.fit((train - center) / scale, inputs.y_pre)
    coef = np.asarray(model.coef_, dtype=np.float64) / scale
    intercept = float(model.intercept_) - float(coef @ center)
    values = intercept + features @ coef
    return Counterfactual(
        values=np.asarray(values, dtype=np.float64),
        weights=coef[:n_donors],
        intercept=intercept,
        details={"ridge_alpha": float(model.alpha_)},
    )

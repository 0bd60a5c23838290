"""The classic method's weights against an independent implementation, pysyncon, on two public
panels (the full comparison, every placebo included, is ``studies/synth_reference.py``).

Same estimator on both sides (outcome-only, ``V = I`` on the pre-period outcomes); pysyncon
solves it with its own quadratic-programming step (SciPy SLSQP), SplitLab with non-negative
least squares, so agreement checks the solver and the problem set-up, not a shared code path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from splitlab.core.synth import synthetic_control

from .public_panels import PublicPanel, load_prop99, load_texas


def _pysyncon_weights(donors_pre: np.ndarray, treated_pre: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        # pysyncon 1.7 has invalid escape sequences in docstrings (a DeprecationWarning when
        # Python 3.11 compiles it)
        warnings.simplefilter("ignore", DeprecationWarning)
        from pysyncon import Synth

    scale = float(np.sqrt(np.mean(donors_pre**2)))
    weights, _ = Synth.w_optimize(
        V_mat=np.eye(donors_pre.shape[0]),
        X0=donors_pre / scale,
        X1=treated_pre / scale,
        qp_options={"maxiter": 10_000, "ftol": 1e-14},
    )
    return np.asarray(weights, dtype=np.float64)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("load", [load_prop99, load_texas], ids=["prop99", "texas"])
def test_classic_weights_and_ratio_match_pysyncon(load: object) -> None:
    panel: PublicPanel = load()  # type: ignore[operator]
    wide = panel.data.pivot(index="unit", columns="time", values="outcome")
    n_pre = int((wide.columns < panel.intervention_time).sum())
    donors = [u for u in wide.index if u != panel.treated]
    Y0 = wide.loc[donors].to_numpy(dtype=np.float64).T
    y = wide.loc[panel.treated].to_numpy(dtype=np.float64)
    reference = _pysyncon_weights(Y0[:n_pre], y[:n_pre])
    ours = synthetic_control(
        panel.data,
        unit_col="unit",
        time_col="time",
        outcome_col="outcome",
        treated=panel.treated,
        intervention_time=panel.intervention_time,
        method="classic",
        placebo=False,
    )
    np.testing.assert_allclose([ours.weights[u] for u in donors], reference, atol=2e-3)
    gap = y - Y0 @ reference
    pre = float(np.sqrt(np.mean(gap[:n_pre] ** 2)))
    post = float(np.sqrt(np.mean(gap[n_pre:] ** 2)))
    assert ours.pre_rmspe == pytest.approx(pre, rel=1e-3)
    assert ours.post_rmspe / ours.pre_rmspe == pytest.approx(post / pre, rel=1e-3)

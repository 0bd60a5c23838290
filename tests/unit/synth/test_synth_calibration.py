"""A fast version of studies/synth_calibration.py: fewer replications, bands wide enough for
that, narrow enough that a broken interval or p-value fails.

Every unit of the simulated factor-model panel is drawn from one distribution, so under no
effect the treated unit is exchangeable with its 39 donors: placebo p-values are uniform on
{1/40, ..., 1} (P(p < 0.05) = 1/40 + 1/40 = 0.05) and the placebo interval covers at 95%.
"""

from __future__ import annotations

import numpy as np

from splitlab.core.synth import synthetic_control
from splitlab.core.synth.simulation import factor_panel

N_SIM = 80
N_DONORS = 39
ARGS = {
    "unit_col": "unit",
    "time_col": "time",
    "outcome_col": "outcome",
    "treated": "u0",
    "intervention_time": 30,
    "method": "classic",
}


def test_interval_coverage_and_null_p_values_are_calibrated() -> None:
    covered, widths, null_p, power_p = [], [], [], []
    for seed in range(N_SIM):
        with_effect = factor_panel(N_DONORS + 1, 40, 30, effect=2.0, seed=seed)
        res = synthetic_control(with_effect, **ARGS)
        covered.append(res.att_ci_lower <= 2.0 <= res.att_ci_upper)
        widths.append(res.att_ci_upper - res.att_ci_lower)
        null = factor_panel(N_DONORS + 1, 40, 30, effect=0.0, seed=100_000 + seed)
        null_p.append(synthetic_control(null, **ARGS).p_value)
        if seed < 20:
            strong = factor_panel(N_DONORS + 1, 40, 30, effect=6.0, seed=200_000 + seed)
            power_p.append(synthetic_control(strong, **ARGS).p_value)
    coverage = float(np.mean(covered))
    p = np.array(null_p)
    assert 0.85 <= coverage <= 0.99, coverage
    assert float(np.mean(p < 0.05)) <= 0.125, p
    assert 0.38 <= float(np.mean(p)) <= 0.62, p.mean()
    assert 0.35 <= float(np.mean(p <= 0.5)) <= 0.65
    # the interval is informative: narrower than the effect that the test detects
    assert float(np.median(widths)) < 6.0
    assert float(np.mean(np.array(power_p) < 0.05)) >= 0.8

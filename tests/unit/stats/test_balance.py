"""The CUNOPAC balance check against scipy's Welch t test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from splitlab.core.stats.balance import BALANCE_ALPHA, balance_check
from splitlab.core.stats.sufficient import Moments


@pytest.mark.parametrize("seed", range(6))
def test_p_values_and_means_match_scipy_welch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = [rng.normal(10.0 + 0.05 * a, 1.0 + a, int(rng.integers(50, 400))) for a in range(3)]
    arms = [Moments.from_arrays(np.zeros_like(v), v) for v in values]
    check = balance_check(arms, ["control", "b", "c"], 1, "device_speed")
    for name, v in zip(["b", "c"], values[1:], strict=True):
        expected = stats.ttest_ind(v, values[0], equal_var=False).pvalue
        assert check.p_values[name] == pytest.approx(expected, rel=1e-9)
        assert check.differences[name] == pytest.approx(v.mean() - values[0].mean(), rel=1e-12)
    assert check.means["control"] == pytest.approx(values[0].mean(), rel=1e-12)
    assert check.used == all(p >= BALANCE_ALPHA for p in check.p_values.values())
    assert check.p_value == min(check.p_values.values())


def test_a_moved_covariate_is_refused_with_the_evidence() -> None:
    rng = np.random.default_rng(1)
    control = rng.normal(5.0, 1.0, 2000)
    treatment = rng.normal(5.3, 1.0, 2000)
    check = balance_check(
        [Moments.from_arrays(control), Moments.from_arrays(treatment)],
        ["control", "treatment"],
        0,
        "pages_seen",
    )
    assert not check.used
    assert check.p_value < 1e-10
    text = check.message()
    assert "pages_seen" in text
    assert "refused" in text
    assert "moved by the treatment" in text
    out = check.to_dict()
    assert out["used"] is False
    assert out["means"]["treatment"] == pytest.approx(treatment.mean(), rel=1e-12)
    assert out["differences"]["treatment"] == pytest.approx(
        treatment.mean() - control.mean(), rel=1e-12
    )


def test_golden_numbers() -> None:
    control = Moments.from_arrays(np.array([1.0, 2.0, 3.0, 4.0]))
    treatment = Moments.from_arrays(np.array([2.0, 3.0, 4.0, 6.0]))
    check = balance_check([control, treatment], ["control", "treatment"], 0, "x", 0.5)
    # scipy.stats.ttest_ind([2, 3, 4, 6], [1, 2, 3, 4], equal_var=False).pvalue
    assert check.p_values["treatment"] == pytest.approx(0.2903335690497173, rel=1e-9)
    assert check.differences["treatment"] == 1.25
    assert not check.used  # 0.29 < the level 0.5


def test_constant_covariates() -> None:
    same = Moments.from_arrays(np.ones(10))
    other = Moments.from_arrays(np.full(10, 2.0))
    assert balance_check([same, same], ["c", "t"], 0, "x").used
    moved = balance_check([same, other], ["c", "t"], 0, "x")
    assert not moved.used
    assert moved.p_value == 0.0
    tiny = balance_check([Moments.from_arrays(np.ones(1)), same], ["c", "t"], 0, "x")
    assert tiny.used
    assert math.isnan(tiny.p_value)


def test_arguments() -> None:
    m = Moments.from_arrays(np.arange(5.0))
    with pytest.raises(ValueError, match="balance_alpha"):
        balance_check([m, m], ["c", "t"], 0, "x", 1.5)
    with pytest.raises(ValueError, match="align"):
        balance_check([m], ["c"], 0, "x")

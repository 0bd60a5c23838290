"""Always-valid confidence sequences and p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitlab.core.stats.comparison import ArmEstimate, compare
from splitlab.core.stats.sequential import (
    always_valid_p_value,
    confidence_sequence_halfwidth,
    running_p_values,
    sequential_comparison,
    tuning_rho,
)


def test_p_value_and_interval_agree() -> None:
    rho = tuning_rho(0.05, 1000)
    for effect in (0.01, 0.05, 0.1, 0.2):
        p = always_valid_p_value(effect, 0.03, 2000, rho)
        half = confidence_sequence_halfwidth(0.03, 2000, 0.05, rho)
        assert (p <= 0.05) == (abs(effect) > half)
    # At p == alpha the half-width equals the effect.
    half = confidence_sequence_halfwidth(0.03, 2000, 0.05, rho)
    assert always_valid_p_value(half, 0.03, 2000, rho) == pytest.approx(0.05, rel=1e-9)


def test_sequence_is_wider_than_fixed_interval_and_tightest_near_tuning() -> None:
    se_at = lambda n: 1.0 / math.sqrt(n)  # noqa: E731
    ratio = {
        n: confidence_sequence_halfwidth(se_at(n), n, 0.05, tuning_rho(0.05, 5000))
        / (1.96 * se_at(n))
        for n in (500, 5000, 50_000)
    }
    assert all(r > 1 for r in ratio.values())
    assert ratio[5000] < ratio[500]
    assert ratio[5000] < ratio[50_000]


def test_sequential_comparison_replaces_fixed_results() -> None:
    c = compare(
        ArmEstimate(1000, 1.0, 0.001, 999, 1.0, 0.001),
        ArmEstimate(1000, 1.08, 0.001, 999, 1.08, 0.001),
    )
    s = sequential_comparison(c)
    assert s.ci_lower < c.ci_lower
    assert s.ci_upper > c.ci_upper
    assert s.p_value > c.p_value
    assert s.rel_ci_lower < c.rel_ci_lower
    one_sided = sequential_comparison(
        compare(
            ArmEstimate(1000, 1.0, 0.001, 999, 1.0, 0.001),
            ArmEstimate(1000, 0.9, 0.001, 999, 0.9, 0.001),
            alternative="greater",
        )
    )
    assert one_sided.p_value == 1.0
    assert one_sided.ci_upper == math.inf


def test_always_valid_under_many_looks() -> None:
    """200 A/A streams with 20 looks: the always-valid test rejects at most ~5%."""
    rng = np.random.default_rng(0)
    looks = np.linspace(100, 2000, 20).astype(int)
    rejected = 0
    naive = 0
    rho = tuning_rho(0.05, 2000)
    for _ in range(200):
        a, b = rng.normal(size=2000), rng.normal(size=2000)
        hit = hit_naive = False
        for n in looks:
            diff = b[:n].mean() - a[:n].mean()
            se = math.sqrt(a[:n].var(ddof=1) / n + b[:n].var(ddof=1) / n)
            hit |= always_valid_p_value(diff, se, 2 * n, rho) <= 0.05
            hit_naive |= abs(diff / se) > 1.96
        rejected += hit
        naive += hit_naive
    assert rejected / 200 <= 0.06
    assert naive / 200 > 0.12


def test_running_p_values_and_bad_arguments() -> None:
    np.testing.assert_allclose(running_p_values([0.5, 0.7, 0.2, 0.3]), [0.5, 0.5, 0.2, 0.2])
    with pytest.raises(ValueError, match="tuning_n"):
        tuning_rho(0.05, 0)
    assert math.isnan(always_valid_p_value(0.1, 0.0, 10, 0.1))

"""Cochran's Q and I^2 against a hand computation and statsmodels' meta-analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from splitlab.core.stats.heterogeneity import cochran_q


def test_hand_computation() -> None:
    # w = 1, 4, 1 -> pooled (1 + 8 + 3) / 6 = 2; Q = 1 + 0 + 1 = 2 on 2 df; I^2 = 0.
    h = cochran_q([1.0, 2.0, 3.0], [1.0, 0.5, 1.0])
    assert h.pooled_effect == pytest.approx(2.0, rel=1e-15)
    assert h.q == pytest.approx(2.0, rel=1e-15)
    assert h.df == 2
    assert h.p_value == pytest.approx(math.exp(-1.0), rel=1e-12)  # chi2(2) survival at 2
    assert h.i_squared == 0.0
    # Spread beyond sampling error: effects 0, 4 with SE 1 -> Q = 8, I^2 = (8 - 1) / 8.
    h = cochran_q([0.0, 4.0], [1.0, 1.0])
    assert h.q == pytest.approx(8.0)
    assert h.i_squared == pytest.approx(7 / 8)
    assert h.p_value == pytest.approx(stats.chi2.sf(8.0, 1), rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_matches_statsmodels_combine_effects(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    se = rng.uniform(0.05, 2.0, k)
    effects = rng.normal(0.3, 1.0, k)
    ours = cochran_q(effects, se)
    ref = combine_effects(effects, se**2)
    assert ours.q == pytest.approx(float(ref.q), rel=1e-12)
    # statsmodels reports (Q - df) / Q unclipped; I^2 is that truncated at 0.
    assert ours.i_squared == pytest.approx(max(0.0, float(ref.i2)), rel=1e-12, abs=1e-15)
    assert ours.pooled_effect == pytest.approx(float(ref.mean_effect_fe), rel=1e-12)
    assert ours.df == int(ref.df_resid)
    assert ours.p_value == pytest.approx(float(stats.chi2.sf(ref.q, ref.df_resid)), rel=1e-12)


def test_unusable_groups_are_left_out_and_counted() -> None:
    h = cochran_q([1.0, float("nan"), 3.0, 5.0], [1.0, 1.0, 0.0, 1.0])
    assert (h.groups, h.left_out, h.df) == (2, 2, 1)
    assert h.q == pytest.approx(8.0)
    lone = cochran_q([1.0, float("nan")], [1.0, 1.0])
    assert lone.groups == 1
    assert math.isnan(lone.q)
    assert math.isnan(lone.p_value)
    assert lone.pooled_effect == 1.0


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="same length"):
        cochran_q([1.0, 2.0], [1.0])

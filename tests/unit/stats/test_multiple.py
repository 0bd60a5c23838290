"""Multiple-comparison corrections against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from splitlab.core.stats.multiple import adjust_p_values

SM = {"holm": "holm", "bonferroni": "bonferroni", "benjamini-hochberg": "fdr_bh"}


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("correction", list(SM))
def test_matches_statsmodels(seed: int, correction: str) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, int(rng.integers(1, 12))) ** 3
    ours = adjust_p_values(p, correction)
    ref = multipletests(p, method=SM[correction])[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_nan_is_left_out_of_the_family() -> None:
    out = adjust_p_values([0.01, float("nan"), 0.04], "bonferroni")
    np.testing.assert_allclose(out, [0.02, np.nan, 0.08])
    np.testing.assert_allclose(adjust_p_values([0.3], "none"), [0.3])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="correction"):
        adjust_p_values([0.1], "sidak")
    with pytest.raises(ValueError, match="p_values"):
        adjust_p_values([1.2], "holm")

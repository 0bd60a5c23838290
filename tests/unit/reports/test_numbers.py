from __future__ import annotations

import math

import pytest

from splitlab.reports.numbers import number, p_value, share, signed_percent


@pytest.mark.parametrize("missing", [None, math.nan, math.inf])
def test_missing_values_read_n_a(missing: float | None) -> None:
    assert {number(missing), signed_percent(missing), share(missing), p_value(missing)} == {"n/a"}


def test_formats() -> None:
    assert number(15.923456) == "15.92"
    assert signed_percent(0.0309) == "+3.09%"
    assert signed_percent(-0.5) == "-50.00%"
    assert share(0.838) == "83.8%"
    assert p_value(0.61071) == "0.6107"
    assert p_value(3.9e-12) == "3.9e-12"

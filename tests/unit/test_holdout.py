"""Holdout impact (pure): golden values against scipy's Welch test on cumulative per-unit
values computed independently with pandas; aggregations; always-valid mode; argument errors."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from splitlab.core.analysis.holdout import holdout_impact
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.sequential import sequential_comparison


def rows(seed: int = 4, units: int = 600, days: int = 6) -> pd.DataFrame:
    """Units seen on random days; everyone else gets +0.3 a day over the holdout."""
    rng = np.random.default_rng(seed)
    out = []
    start = date(2026, 11, 1)
    for u in range(units):
        held = rng.random() < 0.2
        for d in range(days):
            if rng.random() < 0.5:
                events = int(rng.poisson(1.5))
                value = float(rng.normal(1.0 + 0.3 * (not held), 1.0, events).sum())
                out.append((f"u{u}", start + timedelta(days=d), value, held, events))
    return pd.DataFrame(out, columns=["unit", "day", "value", "holdout", "count"])


def reference(frame: pd.DataFrame, aggregation: str) -> list[tuple[date, object]]:
    """Per day: scipy's Welch test of everyone else against the holdout on the units' values
    up to that day."""
    out = []
    for d in sorted(frame.day.unique()):
        upto = frame[frame.day <= d]
        per_unit = upto.groupby("unit").agg(
            value=("value", "sum"), count=("count", "sum"), holdout=("holdout", "first")
        )
        if aggregation == "any":
            per_unit["metric"] = (per_unit.value > 0).astype(float)
        elif aggregation == "mean":
            per_unit = per_unit[per_unit["count"] > 0]
            per_unit["metric"] = per_unit.value / per_unit["count"]
        else:
            per_unit["metric"] = per_unit.value
        rest = per_unit.metric[~per_unit.holdout].to_numpy()
        held = per_unit.metric[per_unit.holdout].to_numpy()
        out.append((d, sps.ttest_ind(rest, held, equal_var=False), rest, held))
    return out


@pytest.mark.parametrize("aggregation", ["sum", "any", "mean"])
def test_matches_scipy_welch_day_by_day(aggregation: str) -> None:
    frame = rows()
    impact = holdout_impact(
        frame.unit, frame.day, frame.value, frame.holdout, count=frame["count"],
        aggregation=aggregation,  # type: ignore[arg-type]
    )  # fmt: skip
    expected = reference(frame, aggregation)
    assert [d.day for d in impact.days] == [e[0] for e in expected]
    for got, (_, test, rest, held) in zip(impact.days, expected, strict=True):
        c = got.comparison
        assert (c.n_treatment, c.n_control) == (len(rest), len(held))
        assert c.effect == pytest.approx(rest.mean() - held.mean(), rel=1e-10, abs=1e-12)
        assert c.p_value == pytest.approx(test.pvalue, rel=1e-8)
        ci = test.confidence_interval(0.95)
        assert (c.ci_lower, c.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-8)
    # The launched changes add 0.3 per event: the latest sum effect is clearly positive.
    if aggregation == "sum":
        latest = impact.to_dict()["latest"]
        assert latest["ci_lower"] > 0
        assert latest["day"] == "2026-11-06"


def test_hand_computed_two_days() -> None:
    # Day 1: holdout a=1, b=2; others c=3, d=5. Day 2: a adds 1 -> holdout 2, 2; others 3, 5.
    impact = holdout_impact(
        ["a", "b", "c", "d", "a"], [1, 1, 1, 1, 2], [1, 2, 3, 5, 1],
        [True, True, False, False, True],
    )  # fmt: skip
    first, second = (d.to_dict() for d in impact.days)
    assert (first["mean_holdout"], first["mean_exposed"], first["effect"]) == (1.5, 4.0, 2.5)
    # se^2 = 0.5/2 + 2/2 = 1.25, df = 1.25^2 / (0.25^2 + 1) = 1.470588...
    se = 1.25**0.5
    df = 1.25**2 / (0.25**2 + 1.0)
    assert first["p_value"] == pytest.approx(2 * sps.t.sf(2.5 / se, df), rel=1e-12)
    assert (second["mean_holdout"], second["effect"]) == (2.0, 2.0)


def test_sequential_uses_the_always_valid_interval() -> None:
    frame = rows(units=300, days=3)
    fixed = holdout_impact(frame.unit, frame.day, frame.value, frame.holdout)
    always = holdout_impact(frame.unit, frame.day, frame.value, frame.holdout, sequential=True)
    for f, s in zip(fixed.days, always.days, strict=True):
        assert s.comparison == sequential_comparison(f.comparison)
        assert s.comparison.ci_upper - s.comparison.ci_lower > f.comparison.ci_upper - (
            f.comparison.ci_lower
        )


def test_an_empty_group_gives_nan_and_a_status_not_an_error() -> None:
    impact = holdout_impact(["a", "b"], [1, 1], [1.0, 2.0], [False, False])
    day = impact.days[0].to_dict()
    assert day["n_holdout"] == 0
    assert day["effect"] is None
    assert day["status"] != "ok"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"value": [1.0, float("nan")]}, "value"),
        ({"value": [1.0]}, "value"),
        ({"holdout": [True, False], "unit": ["a", "a"]}, "holdout"),
        ({"holdout": [2, 0]}, "holdout"),
        ({"aggregation": "median"}, "aggregation"),
        ({"aggregation": "mean"}, "count"),
        ({"count": [-1, 0]}, "count"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], argument: str) -> None:
    args: dict[str, object] = {
        "unit": ["a", "b"], "day": [1, 1], "value": [1.0, 2.0], "holdout": [True, False],
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(ValueError, match=argument) as info:
        holdout_impact(
            args.pop("unit"),
            args.pop("day"),
            args.pop("value"),
            args.pop("holdout"),
            **args,  # type: ignore[arg-type]
        )
    if isinstance(info.value, ArgumentError):
        assert info.value.argument == argument

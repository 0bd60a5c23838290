"""Results by segment in ``splitlab.analyze`` (splitlab.core.analysis.segments): each segment
equals the analysis of its own units, p-values adjusted across segments equal statsmodels'
``multipletests``, Cochran's Q is computed on the segments' effects, small segments warn, and
the JSON matches its schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

import splitlab
from splitlab.contracts.analysis import AnalysisBody
from splitlab.core.analysis.segments import MISSING, parse_segment, segment_labels
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.heterogeneity import cochran_q


def frame(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = rng.choice(np.array(["US", "FR", "DE", "BR", None], dtype=object), n,
                         p=[0.4, 0.2, 0.2, 0.15, 0.05])  # fmt: skip
    data = pd.DataFrame(
        {
            "variant": rng.choice(["control", "t1", "t2"], n),
            "country": country,
            "tenure_days": np.where(rng.uniform(size=n) < 0.03, np.nan, rng.uniform(0, 500, n)),
            "x": rng.normal(size=n),
        }
    )
    lift = np.where(data["variant"] == "t1", np.where(data["country"] == "US", 0.3, 0.0), 0.0)
    data["y"] = data["x"] + rng.normal(size=n) + lift
    data["b"] = (rng.uniform(size=n) < 0.2 + 0.05 * (data["variant"] == "t2")).astype(float)
    return data


def test_each_segment_equals_the_analysis_of_its_own_units() -> None:
    data = frame()
    result = splitlab.analyze(data, metrics=["y", "b"], method="none", segment="country")
    assert result.segments is not None
    assert list(result.segments.segments) == ["BR", "DE", "FR", "US", MISSING]
    for label, seg in result.segments.segments.items():
        mine = data[data["country"].isna()] if label == MISSING else data[data["country"] == label]
        alone = splitlab.analyze(mine, metrics=["y", "b"], method="none")
        assert seg.units == alone.srm.observed
        for name in ("y", "b"):
            for v in ("t1", "t2"):
                got = seg.metrics[name].comparisons[v].comparison
                want = alone.metrics[name].comparisons[v].comparison
                for field in ("effect", "se", "ci_lower", "ci_upper", "p_value", "rel_effect"):
                    assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-9)
    # The overall result is the unsegmented one.
    plain = splitlab.analyze(data, metrics=["y", "b"], method="none")
    assert result.metrics["y"].comparisons["t1"].comparison.effect == pytest.approx(
        plain.metrics["y"].comparisons["t1"].comparison.effect, rel=1e-12
    )
    assert "segments" not in plain.to_dict()


@pytest.mark.parametrize(
    ("correction", "reference"), [("holm", "holm"), ("benjamini-hochberg", "fdr_bh")]
)
def test_p_values_are_adjusted_across_segments(correction: str, reference: str) -> None:
    result = splitlab.analyze(
        frame(seed=3), metrics=["y"], method="none", segment="country",
        segment_correction=correction,  # type: ignore[arg-type]
    )  # fmt: skip
    assert result.segments is not None
    for v in ("t1", "t2"):
        found = [s.metrics["y"].comparisons[v] for s in result.segments.segments.values()]
        raw = np.array([c.comparison.p_value for c in found])
        expected = multipletests(raw, method=reference)[1]
        np.testing.assert_allclose([c.p_value_adjusted for c in found], expected, rtol=1e-12)
    assert result.segments.correction == correction


def test_heterogeneity_is_cochrans_q_of_the_segment_effects() -> None:
    result = splitlab.analyze(frame(n=20000, seed=5), metrics=["y"], covariates=["x"],
                              method="cuped", segment="country")  # fmt: skip
    assert result.segments is not None
    comps = [s.metrics["y"].comparisons["t1"].comparison
             for s in result.segments.segments.values()]  # fmt: skip
    want = cochran_q([c.effect for c in comps], [c.se for c in comps])
    got = result.segments.heterogeneity["y"]["t1"]
    assert got == want
    assert got.p_value < 1e-3  # the lift is in the US only
    assert result.segments.heterogeneity["y"]["t2"].p_value > 1e-3
    assert all(s.metrics["y"].method == "cuped" for s in result.segments.segments.values())


def test_auto_uses_the_overall_method_in_every_segment_and_cupac_predictions_slice() -> None:
    result = splitlab.analyze(frame(n=4000), metrics=["y"], covariates=["x"], method="auto",
                              segment="country", cupac_models=("linear",))  # fmt: skip
    assert result.segments is not None
    overall = result.metrics["y"].method
    assert {s.metrics["y"].method for s in result.segments.segments.values()} == {overall}
    cupac = splitlab.analyze(frame(n=4000), metrics=["y"], covariates=["x"], method="cupac",
                             segment="country", cupac_models=("linear",))  # fmt: skip
    assert cupac.segments is not None
    segs = cupac.segments.segments.values()
    assert {s.metrics["y"].method for s in segs} == {"cupac"}
    assert all(s.metrics["y"].comparisons["t1"].comparison.variance_reduction > 0.3 for s in segs)


def test_numeric_attribute_in_buckets() -> None:
    data = frame()
    result = splitlab.analyze(data, metrics=["y"], method="none",
                              segment="tenure_days:30,180,365")  # fmt: skip
    assert result.segments is not None
    assert list(result.segments.segments) == ["<30", "[30, 180)", "[180, 365)", ">=365", MISSING]
    t = data["tenure_days"]
    mine = data[(t >= 30) & (t < 180)]
    alone = splitlab.analyze(mine, metrics=["y"], method="none")
    got = result.segments.segments["[30, 180)"].metrics["y"].comparisons["t1"].comparison
    assert got.effect == pytest.approx(alone.metrics["y"].comparisons["t1"].comparison.effect)
    assert result.to_dict()["segments"]["edges"] == [30.0, 180.0, 365.0]
    codes, labels = segment_labels(parse_segment("v:0,10"), pd.Series([-1, 0, 9.99, 10, None]))
    assert [labels[c] for c in codes] == ["<0", "[0, 10)", "[0, 10)", ">=10", MISSING]
    # As Postgres' ->> writes JSON scalars: 1.0 -> "1", true -> "true".
    codes, labels = segment_labels(parse_segment("v"), pd.Series([1.0, 2.5, "a", None]))
    assert [labels[c] for c in codes] == ["1", "2.5", "a", MISSING]
    codes, labels = segment_labels(parse_segment("v"), pd.Series([True, False]))
    assert [labels[c] for c in codes] == ["true", "false"]


def test_a_small_segment_is_named_with_its_units_and_the_minimum() -> None:
    data = frame(n=3000)
    data.loc[data.index[:40], "country"] = "IS"
    result = splitlab.analyze(data, metrics=["y"], method="none", segment="country",
                              segment_min_units=50)  # fmt: skip
    assert result.segments is not None
    warned = {w.segment: w for w in result.segments.warnings}
    assert set(warned) == {"IS", MISSING}  # about 150 and 50 units over three variants
    small = warned["IS"]
    assert small.minimum == 50
    assert small.units == min(result.segments.segments["IS"].units.values())
    assert "'IS'" in small.message
    assert f"{small.units} units" in small.message
    assert "minimum of 50" in small.message


def test_the_json_matches_its_schema() -> None:
    body = splitlab.analyze(frame(), metrics=["y"], method="none", segment="country").to_dict()
    parsed = AnalysisBody.model_validate(body)
    assert parsed.segments is not None
    assert parsed.segments.segments["US"].metrics["y"].comparisons["t1"].p_value_adjusted
    assert parsed.segments.heterogeneity["y"]["t1"].df == 4


@pytest.mark.parametrize(
    ("options", "argument", "words"),
    [
        ({"segment": "plan"}, "segment", "not a column"),
        ({"segment": "tenure_days:30,10"}, "segment", "strictly increasing"),
        ({"segment": "tenure_days:a,b"}, "segment", "numbers"),
        ({"segment": ":1,2"}, "segment", "no attribute"),
        ({"segment": "country", "segment_correction": "bonferroni"}, "segment_correction", "holm"),
        ({"segment": "country", "segment_min_units": 1}, "segment_min_units", ">= 2"),
        ({"segment": "country", "cluster_col": "unit"}, "segment", "cluster_col together"),
    ],
)
def test_bad_arguments_name_themselves(options: dict, argument: str, words: str) -> None:
    data = frame(n=600)
    data["unit"] = np.arange(len(data)) // 2
    data["variant"] = data.groupby("unit")["variant"].transform("first")
    with pytest.raises(ArgumentError, match=words) as caught:
        splitlab.analyze(data, metrics=["y"], method="none", **options)
    assert caught.value.argument == argument


def test_an_attribute_with_more_values_than_max_segments_is_refused() -> None:
    """A unit id as the segment made one analysis per unit: 2,200 segments took 3 s and 2.9 MB
    of JSON from the analyzer, 17 s and 8.6 MB as HTML, each segment too small to mean
    anything. Past MAX_SEGMENTS values the segment is refused naming the fix; at the limit
    (plus (missing)) it is analysed."""
    from splitlab.core.analysis.segments import MAX_SEGMENTS

    data = frame(n=2 * MAX_SEGMENTS + 2)
    data["unit"] = [f"u{i}" for i in range(len(data))]
    with pytest.raises(ArgumentError, match="distinct values") as caught:
        splitlab.analyze(data, metrics=["y"], method="none", segment="unit")
    assert caught.value.argument == "segment"
    assert f"{len(data)} distinct values, more than the {MAX_SEGMENTS}" in caught.value.message
    assert "'unit:0,30,180,365'" in caught.value.message
    data["at_limit"] = [None if i < 2 else f"s{i % MAX_SEGMENTS}" for i in range(len(data))]
    result = splitlab.analyze(data, metrics=["y"], method="none", segment="at_limit")
    assert len(result.to_dict()["segments"]["segments"]) == MAX_SEGMENTS + 1


def test_segments_with_allocation_periods_are_stratified_like_their_own_units() -> None:
    data = frame(n=8000, seed=7)
    rng = np.random.default_rng(8)
    data["period"] = (np.arange(len(data)) >= 3000).astype(int)
    late = data["period"] == 1
    data.loc[late, "variant"] = rng.choice(["control", "t1", "t2"], int(late.sum()),
                                           p=[0.2, 0.4, 0.4])  # fmt: skip
    data.loc[late, "y"] += 1.0  # a drift between the periods
    splits = {0: {"control": 1, "t1": 1, "t2": 1}, 1: {"control": 1, "t1": 2, "t2": 2}}
    options = {"metrics": ["y"], "covariates": ["x"], "method": "regression",
               "period_col": "period", "period_weights": splits}  # fmt: skip
    result = splitlab.analyze(data, segment="country", **options)  # type: ignore[arg-type]
    plain = splitlab.analyze(data, **options)  # type: ignore[arg-type]
    assert result.segments is not None
    got = result.metrics["y"].comparisons["t1"].comparison
    assert got.effect == pytest.approx(plain.metrics["y"].comparisons["t1"].comparison.effect)
    assert result.to_dict()["periods"] == plain.to_dict()["periods"]
    for label in ("DE", "US"):
        mine = data[data["country"] == label]
        alone = splitlab.analyze(mine, **options)  # type: ignore[arg-type]
        seg = result.segments.segments[label].metrics["y"].comparisons["t1"].comparison
        want = alone.metrics["y"].comparisons["t1"].comparison
        assert seg.effect == pytest.approx(want.effect, rel=1e-9)
        assert seg.se == pytest.approx(want.se, rel=1e-9)
    with pytest.raises(ArgumentError, match="period_col") as caught:
        splitlab.analyze(data, metrics=["y"], segment="country", period_col="nope")
    assert caught.value.argument == "period_col"


def test_an_empty_text_is_missing_as_an_empty_cell_of_a_file_is() -> None:
    # The analyzer once made "" its own segment while the same unit read from a CSV (pandas:
    # an empty cell is NaN) was "(missing)": one unit, two segments.
    codes, labels = segment_labels(parse_segment("country"), ["DE", "", None, "US", ""])
    assert labels == ["DE", "US", MISSING]
    assert [labels[c] for c in codes] == ["DE", MISSING, MISSING, "US", MISSING]

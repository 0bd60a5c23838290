"""Each metric's named test and effect size, added to an analysis (library and analyzer alike).

:func:`metric_test_specs` checks what the caller asked (``tests={"revenue": "mann_whitney"}``,
``quantiles={"latency": 0.9}``) against the metrics (a proportion test needs a 0/1 metric, a
ratio metric has the delta method only, a quantile belongs to a bootstrap test and lies in
(0, 1)), and gives every metric its :class:`MetricTestSpec` (``welch`` unless told).
:func:`attach_tests` runs the tests and adds to every comparison its
:class:`~splitlab.core.stats.metric_tests.MetricTestResult` and Cohen's d.

``welch``, ``z`` and ``chi2`` need the sufficient statistics only (the analyzer computes them
in SQL); ``mann_whitney`` and the bootstraps need every unit's value of that metric in each
arm (``values``), in a defined order: the data's row order in ``splitlab.analyze``, ascending
``unit_id`` in the analyzer, so a seeded bootstrap gives the same interval in both when the
file is sorted by unit id.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from splitlab.core.analysis.results import AnalysisResult, ComparisonResult
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.comparison import check_alternative
from splitlab.core.stats.metric_tests import (
    BOOTSTRAP_TESTS,
    DEFAULT_QUANTILE,
    DEFAULT_RESAMPLES,
    PER_UNIT_TESTS,
    PROPORTION_TESTS,
    TESTS,
    MetricTest,
    MetricTestResult,
    bootstrap_quantile,
    check_quantile,
    chi_square,
    cohens_d,
    mann_whitney_test,
    welch_test,
    z_test,
)
from splitlab.core.stats.ratio import ratio_test
from splitlab.core.stats.sufficient import FloatArray, Moments

__all__ = ["MetricTestSpec", "attach_tests", "metric_test_specs", "per_unit_metrics"]


@dataclass(frozen=True)
class MetricTestSpec:
    """The test a metric is analyzed with (and, for a bootstrap, the quantile)."""

    test: MetricTest = "welch"
    quantile: float | None = None


def _fit_error(name: str, kind: str, test: str) -> str | None:
    """Why ``test`` does not fit metric ``name`` of ``kind``; None when it does."""
    if kind == "ratio" and test != "welch":
        return (
            f"tests[{name!r}]={test!r} does not apply to ratio metric {name!r}: a ratio is "
            "tested by the delta method; use 'welch' (the default)"
        )
    if test in PROPORTION_TESTS and kind != "proportion":
        return (
            f"tests[{name!r}]={test!r} needs a 0/1 metric (a proportion) and {name!r} has other "
            "values; use 'welch', 'mann_whitney', 'bootstrap_bca' or 'bootstrap_percentile'"
        )
    return None


def metric_test_specs(
    kinds: Mapping[str, str],
    tests: Mapping[str, str] | None = None,
    quantiles: Mapping[str, float] | None = None,
    alternative: str = "two-sided",
) -> dict[str, MetricTestSpec]:
    """Every metric's test (``kinds``: metric name -> ``mean``/``proportion``/``ratio``).

    Raises :class:`~splitlab.core.errors.ArgumentError` naming ``tests`` or ``quantiles``
    when a name is unknown, a test does not fit its metric, or a quantile is misplaced.
    """
    tests = dict(tests or {})
    quantiles = dict(quantiles or {})
    alt = check_alternative(alternative)
    for argument, given in (("tests", tests), ("quantiles", quantiles)):
        unknown = sorted(set(given) - set(kinds))
        if unknown:
            raise ArgumentError(
                argument, f"{argument} names unknown metrics {unknown}; metrics: {list(kinds)}"
            )
    out = {}
    for name, kind in kinds.items():
        test = tests.get(name, "welch")
        if test not in TESTS:
            raise ArgumentError(
                "tests", f"tests[{name!r}] must be one of {list(TESTS)}; got {test!r}"
            )
        why = _fit_error(name, kind, test)
        if why is not None:
            raise ArgumentError("tests", why)
        if test == "chi2" and alt != "two-sided":
            raise ArgumentError(
                "tests",
                f"tests[{name!r}]='chi2' is two-sided and alternative={alt!r}; use 'z' for a "
                "one-sided test of a proportion",
            )
        quantile = quantiles.get(name)
        if quantile is not None:
            check_quantile(quantile, "quantiles")
            if test not in BOOTSTRAP_TESTS:
                raise ArgumentError(
                    "quantiles",
                    f"quantiles[{name!r}] applies to a bootstrap test only and tests[{name!r}] "
                    f"is {test!r}; set tests[{name!r}]='bootstrap_bca' or drop the quantile",
                )
        elif test in BOOTSTRAP_TESTS:
            quantile = DEFAULT_QUANTILE
        out[name] = MetricTestSpec(test, quantile)  # type: ignore[arg-type]
    return out


def per_unit_metrics(specs: Mapping[str, MetricTestSpec]) -> list[str]:
    """The metrics whose test needs every unit's value."""
    return [name for name, spec in specs.items() if spec.test in PER_UNIT_TESTS]


def _test_result(
    spec: MetricTestSpec,
    kind: str,
    control: Moments,
    treatment: Moments,
    values: Mapping[str, FloatArray] | None,
    variant: str,
    control_name: str,
    alpha: float,
    alternative: str,
    n_resamples: int,
    random_state: int,
) -> MetricTestResult:
    if kind == "ratio":
        c = ratio_test(control.select([0, 1]), treatment.select([0, 1]), alpha, alternative)
        return MetricTestResult(
            "welch", c.statistic, c.p_value, c.effect, c.ci_lower, c.ci_upper, status=c.status
        )
    first_c, first_t = control.select([0]), treatment.select([0])
    if spec.test == "welch":
        return welch_test(first_c, first_t, alpha, alternative)
    if spec.test == "z":
        return z_test(first_c, first_t, alpha, alternative)
    if spec.test == "chi2":
        return chi_square(first_c, first_t, alpha, alternative)
    if values is None:
        raise ArgumentError(
            "values", f"test {spec.test!r} needs every unit's values of the metric; none given"
        )
    base, treated = values[control_name], values[variant]
    if spec.test == "mann_whitney":
        return mann_whitney_test(base, treated, alpha, alternative)
    return bootstrap_quantile(
        base,
        treated,
        spec.quantile if spec.quantile is not None else DEFAULT_QUANTILE,
        "bca" if spec.test == "bootstrap_bca" else "percentile",
        n_resamples,
        alpha,
        alternative,
        random_state,
    )


def attach_tests(
    result: AnalysisResult,
    moments: Mapping[str, Mapping[str, Moments]],
    specs: Mapping[str, MetricTestSpec],
    values: Mapping[str, Mapping[str, FloatArray]] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    random_state: int = 0,
) -> AnalysisResult:
    """``result`` with every metric's test and every comparison's Cohen's d.

    ``moments`` maps metric -> variant -> the metric's unadjusted statistics (column 0 the
    metric; a ratio's columns 0 and 1 its numerator and denominator); ``values`` maps each
    metric of :func:`per_unit_metrics` to variant -> its units' values.
    """
    values = values or {}
    metrics = dict(result.metrics)
    for name, metric in result.metrics.items():
        spec = specs.get(name, MetricTestSpec())
        arms = moments[name]
        comparisons: dict[str, ComparisonResult] = {}
        for variant, comp in metric.comparisons.items():
            test = _test_result(
                spec,
                metric.kind,
                arms[result.control],
                arms[variant],
                values.get(name),
                variant,
                result.control,
                result.alpha,
                result.alternative,
                n_resamples,
                random_state,
            )
            d = (
                math.nan
                if metric.kind == "ratio"
                else cohens_d(arms[result.control], arms[variant])
            )
            comparisons[variant] = dataclasses.replace(comp, test=test, cohens_d=d)
        metrics[name] = dataclasses.replace(
            metric, comparisons=comparisons, test=spec.test, quantile=spec.quantile
        )
    return dataclasses.replace(result, metrics=metrics)

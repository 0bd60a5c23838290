"""Each metric definition's test on the analyzer's results (pure).

The tests of sufficient statistics (``welch``, ``z``, ``chi2``) run on the moments the SQL
aggregated (pushdown); ``mann_whitney`` and the bootstraps run on the values of the metrics
that name them, read in the same snapshot by ascending ``unit_id``
(:meth:`~splitlab_analyzer.results.repository.query.ResultsQuery.values_sql`). A bootstrap resamples
:data:`~splitlab.core.stats.metric_tests.DEFAULT_RESAMPLES` times from seed 0, as
``splitlab.analyze``'s defaults do, so the same units give the same interval. The tests are
fixed-horizon; the always-valid horizon carries the same test block (run once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from splitlab.core.analysis.analyze import Horizons
from splitlab.core.analysis.metric_tests import attach_tests, metric_test_specs
from splitlab.core.analysis.results import AnalysisResult
from splitlab.core.stats.metric_tests import BOOTSTRAP_TESTS, DEFAULT_RESAMPLES, PROPORTION_TESTS
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.results.statistics import ExperimentStatistics

__all__ = ["with_metric_tests"]


def _fits(test: str, kind: str) -> bool:
    """A definition's test fits the data: an ``any`` metric without units yet reads as a mean,
    and is tested by Welch until it has values."""
    if kind == "ratio":
        return test == "welch"
    return test not in PROPORTION_TESTS or kind == "proportion"


def with_metric_tests(
    horizons: Horizons, statistics: ExperimentStatistics, definitions: Sequence[MetricDef]
) -> Horizons:
    """Both horizons with every comparison's test (the definition's) and Cohen's d."""
    kinds = {m.name: m.kind for m in statistics.metrics}
    named = {d.name: d for d in definitions if d.name in kinds and _fits(d.test, kinds[d.name])}
    specs = metric_test_specs(
        kinds,
        {n: d.test for n, d in named.items()},
        {
            n: d.quantile
            for n, d in named.items()
            if d.quantile is not None and d.test in BOOTSTRAP_TESTS
        },
        horizons.fixed.alternative,
    )
    fixed = attach_tests(
        horizons.fixed,
        {m.name: m.moments for m in statistics.metrics},
        specs,
        statistics.unit_values,
        n_resamples=DEFAULT_RESAMPLES,
        random_state=0,
    )
    return Horizons(fixed, _same_tests(horizons.sequential, fixed))


def _same_tests(target: AnalysisResult, source: AnalysisResult) -> AnalysisResult:
    metrics = {}
    for name, metric in target.metrics.items():
        done = source.metrics[name]
        comparisons = {
            v: dataclasses.replace(
                c, test=done.comparisons[v].test, cohens_d=done.comparisons[v].cohens_d
            )
            for v, c in metric.comparisons.items()
        }
        metrics[name] = dataclasses.replace(
            metric, comparisons=comparisons, test=done.test, quantile=done.quantile
        )
    return dataclasses.replace(target, metrics=metrics)

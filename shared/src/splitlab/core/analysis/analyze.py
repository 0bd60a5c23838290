"""``splitlab.analyze``: variance-reduced analysis of per-unit experiment data.

Two layers, so that the analyzer service reproduces the offline numbers from SQL aggregates:

- :func:`compute_statistics` turns per-unit columns into :class:`MetricStatistics` (per-variant
  :class:`~splitlab.core.stats.sufficient.Moments`), after validation, missing-value handling and,
  for CUPAC, cross-fitted out-of-fold predictions (the only step that needs per-unit data);
- :func:`analyze_statistics` runs every test on those statistics alone. SQL computes the same
  statistics with ``COUNT``/``SUM`` (see :meth:`Moments.from_sums`) and calls this function.

:func:`analyze` is the two in sequence. Result types and ``to_dict`` live in
:mod:`splitlab.core.analysis.results`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from splitlab.core.analysis.cunopac import (
    check_in_experiment,
    checked_covariates,
    refusal_note,
)
from splitlab.core.analysis.results import (
    AnalysisResult,
    ComparisonResult,
    MetricResult,
    PeriodSummary,
    RowCounts,
)
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.adjustment import (
    METHODS,
    Method,
    MetricKind,
    choose_method,
    estimate_candidates,
)
from splitlab.core.stats.balance import BALANCE_ALPHA, BalanceCheck
from splitlab.core.stats.bayes import gaussian_posterior
from splitlab.core.stats.comparison import Alternative, check_alpha, check_alternative
from splitlab.core.stats.cupac import MODELS, CupacFit, Progress, cross_fit_predictions
from splitlab.core.stats.decision import GuardrailCheck, decide
from splitlab.core.stats.multiple import CORRECTIONS, Correction, adjust_p_values
from splitlab.core.stats.nonparametric import bootstrap_ci, mann_whitney
from splitlab.core.stats.periods import allocation_strata, period_srm_test
from splitlab.core.stats.sequential import DEFAULT_TUNING_N, sequential_comparison
from splitlab.core.stats.sequential_srm import period_sequential_srm_test
from splitlab.core.stats.srm import DEFAULT_MIN_COUNT, DEFAULT_THRESHOLD, srm_test
from splitlab.core.stats.stratified import stratified_candidates
from splitlab.core.stats.sufficient import Moments, merge_all

__all__ = [
    "CUPAC_COLUMN",
    "AnalysisResult",
    "CovariateRefusedWarning",
    "Horizons",
    "MetricStatistics",
    "analyze",
    "analyze_horizons",
    "analyze_statistics",
    "compute_statistics",
    "count_by_period",
]

Inapplicable = Literal["raise", "unadjusted"]
"""What to do when a requested method cannot apply to a metric (see :func:`analyze_statistics`)."""

CUPAC_COLUMN = "cupac_prediction"
CUPAC_MIN_UNITS = 200
"""Below this many units ``auto`` does not try CUPAC (too little data to cross-fit)."""


@dataclass(frozen=True)
class MetricStatistics:
    """What the engine needs about one metric: per-variant statistics over ``columns``.

    ``columns[0]`` is the metric (for a ratio: ``columns[:2]`` are numerator and denominator),
    then the covariates in order, then optionally :data:`CUPAC_COLUMN`.
    """

    name: str
    kind: MetricKind
    moments: Mapping[str, Moments]
    columns: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    dropped_rows: int = 0
    imputed_covariates: int = 0
    cupac: CupacFit | None = None
    periods: Mapping[Hashable, Mapping[str, Moments]] | None = None
    """Per allocation period, the per-variant statistics of its units (None: no periods);
    they merge into ``moments``."""
    in_experiment: tuple[str, ...] = ()
    """The covariates (also in ``covariates``) measured during the experiment (CUNOPAC): each
    is tested for balance between arms before use (:mod:`splitlab.core.stats.balance`)."""
    balance_alpha: float = BALANCE_ALPHA
    """The level of that balance test."""
    unobserved: tuple[str, ...] = ()
    """Covariates the owner named that no analysed unit has a value of (the analyzer: a
    feature never posted, or an in-experiment one observed only before the exposures): left
    out of ``covariates`` and named in the metric's reason."""


class CovariateRefusedWarning(UserWarning):
    """An in-experiment covariate was moved by the treatment and left out (CUNOPAC)."""


# --- validation and preparation of per-unit data ---------------------------------------------
def _columns(data: Any) -> dict[str, Any]:
    """Column name -> column (a pandas Series or an array), converted lazily by the callers."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return {str(c): data[c] for c in data.columns}
    if isinstance(data, Mapping):
        return {str(k): v for k, v in data.items()}
    raise ArgumentError(
        "data", "data must be a pandas DataFrame or a mapping of column name -> array"
    )


def _numeric(values: Any, name: str, role: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        return array.astype(np.float64)
    if array.dtype.kind in "iuf":
        return np.asarray(array, dtype=np.float64)
    if array.dtype.kind == "O":
        try:
            converted = np.asarray(
                [np.nan if v is None else v for v in array.tolist()], dtype=np.float64
            )
        except (TypeError, ValueError):
            pass
        else:
            return converted
    raise ArgumentError(
        _ROLE_ARGUMENTS.get(role, role),
        f"{role} column {name!r} is not numeric (dtype {array.dtype}); "
        "convert it to numbers or drop it from the analysis",
    )


_ROLE_ARGUMENTS = {
    "metric": "metrics",
    "covariate": "covariates",
    "ratio numerator": "ratio_metrics",
    "ratio denominator": "ratio_metrics",
}
"""The argument that names a column of each role (the role is how messages call it)."""


def _require(columns: Mapping[str, Any], names: Sequence[str], role: str) -> None:
    missing = [n for n in names if n not in columns]
    if missing:
        available = ", ".join(sorted(columns)[:20])
        raise ArgumentError(
            _ROLE_ARGUMENTS.get(role, role),
            f"{role} column(s) {missing} not found in the data; available columns: {available}",
        )


def variant_labels(labels: Any) -> tuple[np.ndarray, list[str]]:
    """Factorize a variant column: per-row codes into the returned labels (-1 = missing)."""
    import pandas as pd

    series = (
        labels if isinstance(labels, pd.Series) else pd.Series(np.asarray(labels, dtype=object))
    )
    raw_codes, uniques = pd.factorize(series, sort=True)
    text = [str(u) for u in uniques]
    names = sorted(set(text))
    remap = np.array([names.index(t) for t in text] + [-1], dtype=np.int64)
    return remap[np.where(raw_codes < 0, len(text), raw_codes)], names


def _variants(labels: Any, control: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    codes, names = variant_labels(labels)
    present = codes >= 0
    if not names:
        raise ArgumentError(
            "variant_col",
            "variant_col: the variant column has no value in any of the data's "
            f"{codes.shape[0]} rows; give one row per unit with its variant"
            + (" (the data has a header but no rows)" if codes.shape[0] == 0 else ""),
        )
    if control not in names:
        raise ArgumentError(
            "control",
            f"control={control!r} is not a value of the variant column (values: {names}); "
            "pass control=<the control label>",
        )
    if len(names) < 2:
        raise ArgumentError(
            "variant_col", f"the variant column holds {len(names)} variant(s) {names}; need >= 2"
        )
    order = [control, *[n for n in names if n != control]]
    position = np.array([order.index(n) for n in names] + [-1], dtype=np.int64)
    return position[np.where(present, codes, len(names))], order, present


def _moments_by_variant(
    matrix: np.ndarray, codes: np.ndarray, order: Sequence[str]
) -> dict[str, Moments]:
    return {name: Moments.from_arrays(matrix[codes == i]) for i, name in enumerate(order)}


def period_labels(values: Any) -> tuple[np.ndarray, list[Hashable]]:
    """Factorize a period column: per-row codes into the returned (sorted) period labels."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    codes, uniques = pd.factorize(series, sort=True)
    if (codes < 0).any():
        raise ArgumentError(
            "period_col",
            "period_col has missing values; give every unit the allocation period of its "
            "first exposure (units logged before periods existed belong to the first one)",
        )
    labels: list[Hashable] = [u.item() if hasattr(u, "item") else u for u in uniques]
    return np.asarray(codes, dtype=np.int64), labels


def _moments_by_period(
    matrix: np.ndarray,
    codes: np.ndarray,
    periods: np.ndarray | None,
    labels: Sequence[Hashable],
    order: Sequence[str],
) -> dict[Hashable, dict[str, Moments]] | None:
    if periods is None:
        return None
    return {
        label: _moments_by_variant(matrix[periods == j], codes[periods == j], order)
        for j, label in enumerate(labels)
    }


def _select_periods(
    periods: Mapping[Hashable, Mapping[str, Moments]] | None, columns: Sequence[int]
) -> dict[Hashable, dict[str, Moments]] | None:
    if periods is None:
        return None
    return {p: {v: m.select(columns) for v, m in by.items()} for p, by in periods.items()}


def compute_statistics(
    data: Any,
    *,
    variant_col: str = "variant",
    control: str = "control",
    metrics: Sequence[str] = (),
    covariates: Sequence[str] = (),
    ratio_metrics: Mapping[str, tuple[str, str]] | None = None,
    cupac: bool = False,
    cupac_folds: int = 5,
    cupac_models: Sequence[str] = MODELS,
    cupac_time_budget_s: float = 300.0,
    cupac_params: Mapping[str, Any] | None = None,
    random_state: int = 0,
    progress: Progress | None = None,
    period_col: str | None = None,
    in_experiment_covariates: Sequence[str] = (),
    balance_alpha: float = BALANCE_ALPHA,
) -> tuple[list[MetricStatistics], dict[str, int], RowCounts]:
    """Validate per-unit data and reduce it to per-variant sufficient statistics.

    Returns the metrics' statistics, the unit count per variant (for SRM) and row counts.
    Rows with a missing variant are dropped; rows with a missing metric are dropped for that
    metric (and counted); missing covariates are imputed with the covariate's overall mean
    (valid because covariates are pre-exposure). With ``cupac=True`` each mean/proportion
    metric gets a cross-fitted out-of-fold prediction column from the covariates. With
    ``period_col`` every metric also carries its statistics per allocation period.
    ``in_experiment_covariates`` (CUNOPAC) are further covariates, measured during the
    experiment: they join ``covariates`` (never CUPAC's model) and are imputed the same way;
    the analysis tests each for balance before use. Ratio metrics carry the covariates too
    (ratio CUPED, :mod:`splitlab.core.stats.ratio_cuped`).
    """
    columns = _columns(data)
    ratios = dict(ratio_metrics or {})
    if not metrics and not ratios:
        raise ArgumentError(
            "metrics", "metrics must name at least one metric column, e.g. metrics=['revenue']"
        )
    if isinstance(metrics, str) or isinstance(covariates, str):
        raise ArgumentError(
            "metrics", "metrics and covariates must be lists of column names, not a string"
        )
    _require(columns, [variant_col], "variant_col")
    if period_col is not None:
        _require(columns, [period_col], "period_col")
    _require(columns, list(metrics), "metric")
    _require(columns, list(covariates), "covariate")
    in_experiment = check_in_experiment(columns, metrics, covariates, in_experiment_covariates)
    pre_covariates = list(covariates)
    covariates = [*pre_covariates, *in_experiment]
    for name, pair in ratios.items():
        if len(pair) != 2:
            raise ArgumentError(
                "ratio_metrics", f"ratio_metrics[{name!r}] must be (numerator, denominator)"
            )
        try:
            _require(columns, list(pair), f"ratio metric {name!r}")
        except ArgumentError as exc:
            raise ArgumentError("ratio_metrics", exc.message) from None
    overlap = set(metrics) & set(covariates)
    if overlap:
        raise ArgumentError(
            "covariates", f"columns {sorted(overlap)} are both metric and covariate; pick one role"
        )

    codes, order, present = _variants(columns[variant_col], str(control))
    counts = {name: int((codes == i).sum()) for i, name in enumerate(order)}
    rows = RowCounts(total=int(codes.shape[0]), missing_variant=int((~present).sum()))
    period_codes: np.ndarray | None = None
    labels: list[Hashable] = []
    if period_col is not None:
        period_codes, labels = period_labels(columns[period_col])

    x = np.empty((codes.shape[0], len(covariates)))
    imputed = 0
    for j, name in enumerate(covariates):
        values = _numeric(columns[name], name, "covariate")
        missing = np.isnan(values) & present
        if np.isinf(values).any():
            raise ArgumentError(
                "covariates", f"covariate column {name!r} has infinite values; clip or drop them"
            )
        if missing.all():
            raise ArgumentError(
                "covariates", f"covariate column {name!r} has no values; drop it from covariates"
            )
        if missing.any():
            values = np.where(np.isnan(values), np.nanmean(values[present]), values)
            imputed += int(missing.sum())
        x[:, j] = values

    everyone = bool(present.all())
    prepared = []
    for name in metrics:
        y = _numeric(columns[name], name, "metric")
        if np.isinf(y).any():
            raise ArgumentError(
                "metrics", f"metric column {name!r} has infinite values; clip or drop them"
            )
        missing = np.isnan(y) & present
        dropped = int(missing.sum())
        keep = present & ~missing
        whole = dropped == 0
        yk = (y if everyone else y[present]) if whole else y[keep]
        xk = (x if everyone else x[present]) if whole else x[keep]
        binary = yk.size > 0 and bool(((yk == 0.0) | (yk == 1.0)).all())
        kind: MetricKind = "proportion" if binary else "mean"
        fit = None
        if cupac and pre_covariates and yk.size >= max(CUPAC_MIN_UNITS, 2 * cupac_folds):
            fit = cross_fit_predictions(
                xk[:, : len(pre_covariates)],
                yk,
                cupac_folds,
                cupac_models,
                cupac_time_budget_s,
                random_state,
                cupac_params,
                progress,
            )
        prepared.append((name, yk, xk, keep, whole, kind, dropped, fit))

    # Metrics without missing values share one pass over the data: per-variant statistics of
    # [every such metric, every CUPAC prediction, the covariates], then column selections.
    shared = [p for p in prepared if p[4]]
    joint: dict[str, Moments] = {}
    joint_periods: dict[Hashable, dict[str, Moments]] | None = None
    if shared:
        fits = [p[7].predictions for p in shared if p[7] is not None]
        blocks = [np.column_stack([p[1] for p in shared] + fits), shared[0][2]]
        codes_present = codes if everyone else codes[present]
        joint_matrix = np.hstack(blocks)
        joint = _moments_by_variant(joint_matrix, codes_present, order)
        joint_periods = _moments_by_period(
            joint_matrix,
            codes_present,
            None if period_codes is None else (period_codes if everyone else period_codes[present]),
            labels,
            order,
        )
    n_shared, n_fits = len(shared), sum(p[7] is not None for p in shared)
    cov_columns = list(range(n_shared + n_fits, n_shared + n_fits + len(covariates)))
    fit_index = n_shared
    out: list[MetricStatistics] = []
    for name, yk, xk, keep, whole, kind, dropped, fit in prepared:
        names: tuple[str, ...] = (name, *covariates)
        if fit is not None:
            names = (*names, CUPAC_COLUMN)
        if whole:
            j = [p[0] for p in shared].index(name)
            columns_of = [j, *cov_columns]
            if fit is not None:
                columns_of.append(fit_index)
                fit_index += 1
            moments = {v: m.select(columns_of) for v, m in joint.items()}
            periods = _select_periods(joint_periods, columns_of)
        else:
            parts = [yk.reshape(-1, 1), xk]
            if fit is not None:
                parts.append(fit.predictions.reshape(-1, 1))
            matrix = np.hstack(parts)
            moments = _moments_by_variant(matrix, codes[keep], order)
            periods = _moments_by_period(
                matrix,
                codes[keep],
                None if period_codes is None else period_codes[keep],
                labels,
                order,
            )
        out.append(
            MetricStatistics(
                name,
                kind,
                moments,
                names,
                tuple(covariates),
                dropped,
                imputed,
                fit,
                periods,
                in_experiment,
                balance_alpha,
            )
        )
    for name, (num, den) in ratios.items():
        a = _numeric(columns[num], num, "ratio numerator")
        b = _numeric(columns[den], den, "ratio denominator")
        keep = present & ~np.isnan(a) & ~np.isnan(b)
        dropped = int((present & ~(~np.isnan(a) & ~np.isnan(b))).sum())
        clash = sorted({num, den} & set(covariates))
        if clash:
            raise ArgumentError(
                "covariates",
                f"columns {clash} are both a part of ratio metric {name!r} and a covariate; "
                "pick one role",
            )
        matrix = np.column_stack([a[keep], b[keep], x[keep]])
        out.append(
            MetricStatistics(
                name,
                "ratio",
                _moments_by_variant(matrix, codes[keep], order),
                (num, den, *covariates),
                tuple(covariates),
                dropped_rows=dropped,
                imputed_covariates=imputed,
                in_experiment=in_experiment,
                balance_alpha=balance_alpha,
                periods=_moments_by_period(
                    matrix,
                    codes[keep],
                    None if period_codes is None else period_codes[keep],
                    labels,
                    order,
                ),
            )
        )
    return out, counts, rows


# --- the engine on sufficient statistics ------------------------------------------------------
@dataclass(frozen=True)
class Horizons:
    """One analysis at both horizons (:func:`analyze_horizons`)."""

    fixed: AnalysisResult
    """Fixed-horizon tests (valid once, at the planned sample)."""
    sequential: AnalysisResult
    """Always-valid tests and confidence sequences (valid at every look)."""

    def at(self, sequential: bool) -> AnalysisResult:
        return self.sequential if sequential else self.fixed


@dataclass(frozen=True)
class _Choice:
    """One metric's candidate estimates (fixed horizon) and the method picked among them."""

    requested: str
    chosen: str
    reason: str
    candidates: dict[str, Any]
    balance: tuple[BalanceCheck, ...] = ()
    """The balance check of each in-experiment covariate (CUNOPAC)."""


def _metric_choice(
    stats: MetricStatistics,
    order: Sequence[str],
    method: str,
    alpha: float,
    alternative: str,
    strata: Sequence[Sequence[Hashable]] = (),
    inapplicable: Inapplicable = "raise",
) -> _Choice:
    arms = [stats.moments[v] for v in order]
    cov_idx, balance = checked_covariates(
        arms, order, stats.columns, stats.covariates, stats.in_experiment, stats.balance_alpha
    )
    refused = refusal_note(balance)
    cupac_idx = stats.columns.index(CUPAC_COLUMN) if CUPAC_COLUMN in stats.columns else None
    requested = method
    why = _inapplicable_reason(stats, method, bool(cov_idx), cupac_idx is not None)
    if why is not None:
        # Covariates refused by the balance check are a finding, not a bad argument: the
        # metric falls back to no adjustment with the evidence in its reason.
        covariates_refused = bool(refused) and method in ("cuped", "regression")
        if inapplicable == "raise" and not covariates_refused:
            raise ArgumentError("method", why[0])
        method = "none"
    wanted = list(METHODS[:-1]) if method == "auto" else sorted({"none", method})
    if len(strata) > 1 and stats.periods is not None:
        by_period, k = stats.periods, arms[0].k
        strata_arms = [
            [merge_all((by_period[p][v] for p in group if p in by_period), k) for v in order]
            for group in strata
        ]
        candidates = stratified_candidates(
            strata_arms,
            order,
            stats.kind,
            wanted,
            cov_idx,
            cupac_idx,
            stats.covariates,
            alpha,
            alternative,
        )
    else:
        candidates = estimate_candidates(
            arms,
            order,
            stats.kind,
            wanted,
            cov_idx,
            cupac_idx,
            stats.covariates,
            alpha,
            alternative,
        )
    if method == "auto":
        chosen, reason = choose_method(candidates)
    elif why is not None:
        chosen, reason = "none", f"{why[1]}; unadjusted"
    else:
        chosen, reason = method, "requested"
    if refused:
        reason = f"{reason}; {refused}"
    if stats.unobserved:
        reason = (
            f"{reason}; covariate(s) {', '.join(stats.unobserved)} left out: no analysed unit "
            "has a value (in-experiment covariates count values observed at or after the "
            "unit's first exposure, pre-exposure ones values before it)"
        )
    return _Choice(requested, chosen, reason, dict(candidates), tuple(balance))


def _metric_view(
    stats: MetricStatistics,
    choice: _Choice,
    sequential: bool,
    tuning_n: float,
    correction: str,
    lower_is_better: bool,
) -> MetricResult:
    """The metric's result at one horizon: the fixed-horizon candidates as they are, or turned
    into always-valid ones (the method is chosen on the fixed-horizon estimates either way)."""
    candidates = choice.candidates
    if sequential:
        candidates = {
            m: type(c)(
                c.method,
                {v: sequential_comparison(x, tuning_n) for v, x in c.comparisons.items()},
                c.detail,
            )
            for m, c in candidates.items()
        }
    picked = candidates[choice.chosen]
    variants = list(picked.comparisons)
    adjusted = adjust_p_values([picked.comparisons[v].p_value for v in variants], correction)
    comparisons = {}
    for v, p_adj in zip(variants, adjusted, strict=True):
        c = picked.comparisons[v]
        bayes = gaussian_posterior(c.effect, c.se, lower_is_better=lower_is_better)
        comparisons[v] = ComparisonResult(
            c, float(p_adj), bayes.chance_to_beat_control, bayes.expected_loss
        )
    return MetricResult(
        name=stats.name,
        kind=stats.kind,
        method=choice.chosen,
        requested_method=choice.requested,
        reason=choice.reason,
        detail=picked.detail,
        variance_reduction=picked.variance_reduction,
        comparisons=comparisons,
        candidates=candidates,
        correction=correction,
        dropped_rows=stats.dropped_rows,
        imputed_covariates=stats.imputed_covariates,
        cupac=stats.cupac,
        lower_is_better=lower_is_better,
        balance=list(choice.balance),
    )


def _inapplicable_reason(
    stats: MetricStatistics, method: str, has_covariates: bool, has_cupac: bool
) -> tuple[str, str] | None:
    """Why ``method`` cannot apply to the metric: (the library's message, a neutral one);
    None when it can."""
    if method in ("auto", "none"):
        return None
    if stats.kind == "ratio" and not (method == "cuped" and has_covariates):
        if method == "cuped":
            return (
                f"method='cuped' on ratio metric {stats.name!r} needs covariates=[...] "
                "(e.g. the pre-period numerator and denominator)",
                f"cuped needs a covariate and ratio metric {stats.name!r} has none",
            )
        return (
            f"method={method!r} does not apply to ratio metric {stats.name!r}; "
            "use method='none', 'cuped' (with covariates) or 'auto'",
            f"{method} does not apply to a ratio metric (delta method, with CUPED only)",
        )
    if stats.kind == "ratio":
        return None
    if method in ("cuped", "regression") and not has_covariates:
        return (
            f"method={method!r} needs covariates=[...] (pre-exposure columns)",
            f"{method} needs a pre-exposure covariate and {stats.name!r} has none",
        )
    if method == "cupac" and not has_cupac:
        return (
            "method='cupac' needs covariates=[...] and at least "
            f"{CUPAC_MIN_UNITS} units with the metric",
            f"cupac needs out-of-fold predictions for {stats.name!r} and there are none",
        )
    return None


def _check_options(method: str, alpha: float, alternative: str, correction: str) -> None:
    if method not in METHODS:
        raise ArgumentError("method", f"method must be one of {list(METHODS)}; got {method!r}")
    check_alpha(alpha)
    check_alternative(alternative)
    if correction not in CORRECTIONS:
        raise ArgumentError(
            "correction", f"correction must be one of {list(CORRECTIONS)}; got {correction!r}"
        )


def analyze_statistics(
    metrics: Sequence[MetricStatistics],
    counts: Mapping[str, int],
    *,
    control: str = "control",
    method: Method = "auto",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    sequential: bool = False,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    correction: Correction = "holm",
    tuning_n: float = DEFAULT_TUNING_N,
    guardrails: Mapping[str, float] | None = None,
    lower_is_better: Sequence[str] = (),
    min_sample: int | None = None,
    srm_threshold: float = DEFAULT_THRESHOLD,
    srm_min_count: int = DEFAULT_MIN_COUNT,
    rows: RowCounts | None = None,
    period_counts: Mapping[Hashable, Mapping[str, int]] | None = None,
    period_weights: Mapping[Hashable, Mapping[str, float]] | None = None,
    period_starts: Mapping[Hashable, str] | None = None,
    inapplicable: Inapplicable = "raise",
) -> AnalysisResult:
    """Analyze sufficient statistics (from :func:`compute_statistics` or SQL aggregates).

    The first metric is the primary one; ``guardrails`` maps metric name to its largest
    acceptable relative harm; ``weights`` is the configured split (mapping or in variant order
    control first) for the SRM check.

    Allocation periods: ``period_counts`` holds the units per variant of each period (by
    first exposure) and ``period_weights`` each period's split. SRM then expects
    ``sum_p N_p w_p`` and effects are stratified by split (:mod:`splitlab.core.stats.stratified`);
    periods that all share one split give exactly the pooled results. Without
    ``period_weights`` every period is tested against ``weights`` and is a stratum of its own
    (unbiased whatever the splits were). ``period_starts`` (ISO times) are only reported.
    A requested ``method`` that a metric cannot use (no
    covariate, a ratio metric, no CUPAC predictions) raises ``ValueError`` when
    ``inapplicable="raise"``; with ``"unadjusted"`` that metric is analyzed without adjustment
    and its ``method``/``reason`` say so (the other metrics keep the requested method).
    """
    return _analyze(
        metrics,
        counts,
        horizons=[(sequential, min_sample)],
        control=control,
        method=method,
        alpha=alpha,
        alternative=alternative,
        weights=weights,
        correction=correction,
        tuning_n=tuning_n,
        guardrails=guardrails,
        lower_is_better=lower_is_better,
        srm_threshold=srm_threshold,
        srm_min_count=srm_min_count,
        rows=rows,
        period_counts=period_counts,
        period_weights=period_weights,
        period_starts=period_starts,
        inapplicable=inapplicable,
    )[0]


def analyze_horizons(
    metrics: Sequence[MetricStatistics],
    counts: Mapping[str, int],
    *,
    control: str = "control",
    method: Method = "auto",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    weights: Mapping[str, float] | Sequence[float] | None = None,
    correction: Correction = "holm",
    tuning_n: float = DEFAULT_TUNING_N,
    guardrails: Mapping[str, float] | None = None,
    lower_is_better: Sequence[str] = (),
    min_sample: int | None = None,
    srm_threshold: float = DEFAULT_THRESHOLD,
    srm_min_count: int = DEFAULT_MIN_COUNT,
    rows: RowCounts | None = None,
    period_counts: Mapping[Hashable, Mapping[str, int]] | None = None,
    period_weights: Mapping[Hashable, Mapping[str, float]] | None = None,
    period_starts: Mapping[Hashable, str] | None = None,
    inapplicable: Inapplicable = "raise",
) -> Horizons:
    """Both horizons of one analysis: the fixed-horizon result and the always-valid one.

    The same arguments as :func:`analyze_statistics` (without ``sequential``); each metric's
    candidate estimates and method choice are computed once and viewed at both horizons, so
    ``analyze_horizons(...).fixed`` equals ``analyze_statistics(..., sequential=False)`` and
    ``.sequential`` equals ``analyze_statistics(..., sequential=True, min_sample=None)``
    (``min_sample`` is a fixed-horizon rule: an always-valid test may stop at any time).
    """
    fixed, sequential = _analyze(
        metrics,
        counts,
        horizons=[(False, min_sample), (True, None)],
        control=control,
        method=method,
        alpha=alpha,
        alternative=alternative,
        weights=weights,
        correction=correction,
        tuning_n=tuning_n,
        guardrails=guardrails,
        lower_is_better=lower_is_better,
        srm_threshold=srm_threshold,
        srm_min_count=srm_min_count,
        rows=rows,
        period_counts=period_counts,
        period_weights=period_weights,
        period_starts=period_starts,
        inapplicable=inapplicable,
    )
    return Horizons(fixed, sequential)


def _analyze(
    metrics: Sequence[MetricStatistics],
    counts: Mapping[str, int],
    *,
    control: str = "control",
    method: Method = "auto",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    horizons: Sequence[tuple[bool, int | None]],
    weights: Mapping[str, float] | Sequence[float] | None = None,
    correction: Correction = "holm",
    tuning_n: float = DEFAULT_TUNING_N,
    guardrails: Mapping[str, float] | None = None,
    lower_is_better: Sequence[str] = (),
    srm_threshold: float = DEFAULT_THRESHOLD,
    srm_min_count: int = DEFAULT_MIN_COUNT,
    rows: RowCounts | None = None,
    period_counts: Mapping[Hashable, Mapping[str, int]] | None = None,
    period_weights: Mapping[Hashable, Mapping[str, float]] | None = None,
    period_starts: Mapping[Hashable, str] | None = None,
    inapplicable: Inapplicable = "raise",
) -> list[AnalysisResult]:
    """Every horizon of ``horizons`` ((sequential, min_sample) pairs) from one set of
    candidate estimates per metric."""
    if inapplicable not in ("raise", "unadjusted"):
        raise ArgumentError(
            "inapplicable", f"inapplicable must be 'raise' or 'unadjusted'; got {inapplicable!r}"
        )
    _check_options(method, alpha, alternative, correction)
    if control not in counts:
        raise ArgumentError(
            "control", f"control={control!r} has no counts; variants: {sorted(counts)}"
        )
    order = [control, *[v for v in counts if v != control]]
    if len(order) < 2:
        raise ArgumentError(
            "counts", "counts must hold at least 2 variants (control and a treatment)"
        )
    if weights is not None and not isinstance(weights, Mapping):
        seq = list(weights)
        if len(seq) != len(order):
            raise ArgumentError(
                "weights",
                f"weights has {len(seq)} entries for {len(order)} variants {order}; "
                "pass one weight per variant (control first) or a mapping",
            )
        weights = dict(zip(order, seq, strict=True))
    strata: list[list[Hashable]] = []
    periods: list[PeriodSummary] = []
    if period_counts is not None:
        split = _period_weights(period_counts, period_weights, weights)
        checked = period_srm_test(period_counts, split, order, srm_threshold, srm_min_count)
        srm = checked.combined
        srm_sequential = period_sequential_srm_test(
            period_counts, split, order, srm_threshold, min_count=srm_min_count
        )
        strata = (
            allocation_strata(list(period_counts), split, order)
            if period_weights
            else [[p] for p in period_counts]
        )
        periods = [
            PeriodSummary(
                c.period,
                None if period_starts is None else period_starts.get(c.period),
                dict(zip(order, _shares(split[c.period], order), strict=True)),
                c.srm,
                next(i for i, group in enumerate(strata) if c.period in group),
                {v: int(period_counts[c.period].get(v, 0)) for v in order},
            )
            for c in checked.periods
        ]
    else:
        srm = srm_test(counts, weights, srm_threshold, srm_min_count)
        srm_sequential = period_sequential_srm_test(
            {0: counts}, {0: weights}, order, srm_threshold, min_count=srm_min_count
        )
    guard = dict(guardrails or {})
    names = [m.name for m in metrics]
    unknown = sorted((set(guard) | set(lower_is_better)) - set(names))
    if unknown:
        raise ArgumentError(
            "guardrails" if set(guard) - set(names) else "lower_is_better",
            f"guardrails/lower_is_better name unknown metrics {unknown}; metrics: {names}",
        )
    choices = {
        m.name: _metric_choice(m, order, method, alpha, alternative, strata, inapplicable)
        for m in metrics
    }
    out = []
    for sequential, min_sample in horizons:
        results = {
            m.name: _metric_view(
                m, choices[m.name], sequential, tuning_n, correction, m.name in lower_is_better
            )
            for m in metrics
        }
        primary = results[names[0]]
        decisions = {}
        for v in order[1:]:
            checks = [
                GuardrailCheck(
                    g, results[g].comparisons[v].comparison, margin, g in lower_is_better
                )
                for g, margin in guard.items()
            ]
            decisions[v] = decide(
                primary.comparisons[v].comparison,
                checks,
                srm_sequential.mismatch if sequential else srm.mismatch,
                min_sample,
                names[0] in lower_is_better,
            )
        out.append(
            AnalysisResult(
                control=control,
                variants=order,
                alpha=alpha,
                alternative=alternative,
                sequential=sequential,
                srm=srm,
                srm_sequential=srm_sequential,
                metrics=results,
                decisions=decisions,
                rows=rows or RowCounts(total=sum(counts.values()), missing_variant=0),
                periods=periods,
            )
        )
    return _default_tests(out, metrics, alternative)


def _default_tests(
    results: list[AnalysisResult], metrics: Sequence[MetricStatistics], alternative: str
) -> list[AnalysisResult]:
    """Every result with each metric's default test (Welch; the delta method for a ratio) and
    Cohen's d, from the statistics alone (:mod:`splitlab.core.analysis.metric_tests`)."""
    from splitlab.core.analysis.metric_tests import attach_tests, metric_test_specs

    specs = metric_test_specs({m.name: m.kind for m in metrics}, alternative=alternative)
    moments = {m.name: m.moments for m in metrics}
    return [attach_tests(r, moments, specs) for r in results]


def _shares(weights: Mapping[str, float] | None, order: Sequence[str]) -> list[float]:
    from splitlab.core.stats.periods import normalized_weights

    return list(normalized_weights(weights, order))


def _period_weights(
    counts: Mapping[Hashable, Mapping[str, int]],
    period_weights: Mapping[Hashable, Mapping[str, float]] | None,
    weights: Mapping[str, float] | None,
) -> dict[Hashable, Mapping[str, float] | None]:
    """Each period's split: its own from ``period_weights``, else the configured ``weights``
    (equal when none)."""
    if period_weights is None:
        return dict.fromkeys(counts, weights)
    missing = [p for p in counts if p not in period_weights]
    if missing:
        raise ArgumentError(
            "period_weights",
            f"period_weights has no split for period(s) {missing}; give every period's "
            "variant weights, e.g. {0: {'control': 50, 'treatment': 50}}",
        )
    return {p: period_weights[p] for p in counts}


def analyze(
    data: Any,
    *,
    variant_col: str = "variant",
    control: str = "control",
    metrics: Sequence[str] = (),
    covariates: Sequence[str] | None = None,
    method: Method = "auto",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    sequential: bool = False,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    ratio_metrics: Mapping[str, tuple[str, str]] | None = None,
    correction: Correction = "holm",
    tuning_n: float = DEFAULT_TUNING_N,
    guardrails: Mapping[str, float] | None = None,
    lower_is_better: Sequence[str] = (),
    min_sample: int | None = None,
    mann_whitney_test: bool = False,
    bootstrap: int = 0,
    cupac_folds: int = 5,
    cupac_models: Sequence[str] = MODELS,
    cupac_time_budget_s: float = 300.0,
    cupac_params: Mapping[str, Any] | None = None,
    random_state: int = 0,
    progress: Progress | None = None,
    period_col: str | None = None,
    period_weights: Mapping[Hashable, Mapping[str, float]] | None = None,
    mde: float | None = None,
    segment: str | None = None,
    segment_correction: Literal["holm", "benjamini-hochberg"] = "holm",
    segment_min_units: int = 100,
    tests: Mapping[str, str] | None = None,
    quantiles: Mapping[str, float] | None = None,
    resamples: int = 2000,
    cluster_col: str | None = None,
    in_experiment_covariates: Sequence[str] = (),
    balance_alpha: float = BALANCE_ALPHA,
) -> AnalysisResult:
    """Analyze one row per unit: every treatment against ``control`` on every metric.

    ``method`` is ``none``, ``cuped`` (one covariate; with several, the most correlated),
    ``regression`` (Lin), ``cupac`` (cross-fitted model of the covariates) or ``auto``.
    ``mann_whitney_test`` and ``bootstrap`` (number of resamples) add nonparametric results
    on the unadjusted values. See :mod:`splitlab.core.analysis.results` for the result's fields.

    ``period_col`` names the column with each unit's allocation period (the period of its
    first exposure); ``period_weights`` maps each period to its variant weights. With both,
    SRM expects each period's units at that period's weights and effects are estimated per
    split and combined by the splits' shares of the units (docs/statistics.md, "Allocation
    periods"); when every period has the same split the numbers equal those without periods.

    Monitoring (:mod:`splitlab.core.analysis.monitoring`): with ``guardrails`` the result also
    holds the one-sided always-valid test of each guardrail (``guardrail_tests``, the JSON's
    ``guardrails``); with ``mde`` (relative, e.g. 0.05) the power of the current sample to
    detect it on the primary metric (``power_so_far``).

    ``segment`` (a column, ``"country"``, or a numeric one with bucket edges,
    ``"tenure_days:0,30,180,365"``) adds the results per segment (``segments``): each metric
    with the overall result's method, p-values adjusted across segments by
    ``segment_correction``, Cochran's Q per metric and treatment, and a warning for each
    segment with fewer than ``segment_min_units`` units in an arm
    (:mod:`splitlab.core.analysis.segments`).

    ``tests`` names a metric's test (``{"revenue": "mann_whitney", "ctr": "chi2"}``; ``welch``
    when not named; :mod:`splitlab.core.analysis.metric_tests`), ``quantiles`` the quantile
    of a bootstrap test (the median when not named), ``resamples`` its resamples, seeded by
    ``random_state``. Every comparison carries its ``test`` and ``cohens_d``.

    ``cluster_col`` (e.g. ``"user_id"``): the data hold several rows per randomisation unit
    (sessions, requests); rows are summed per cluster and every metric is analysed as a ratio
    of per-cluster sums by the delta method (:mod:`splitlab.core.analysis.clusters`), so the
    CI of a per-row mean accounts for the correlation within a cluster.

    ``in_experiment_covariates`` (CUNOPAC): columns measured during the experiment that the
    treatment should not move; each is tested for balance between arms at ``balance_alpha``
    (:mod:`splitlab.core.stats.balance`), and one the treatment moved is refused (a
    :class:`CovariateRefusedWarning`, and the evidence in the metric's
    ``in_experiment_covariates``) while the valid ones join ``covariates``.
    """
    _check_options(method, alpha, alternative, correction)
    if mde is not None and not (math.isfinite(mde) and mde > 0):
        raise ArgumentError("mde", f"mde must be a relative effect > 0 (0.05 = 5%); got {mde}")
    if bootstrap and bootstrap < 100:
        raise ArgumentError(
            "bootstrap", f"bootstrap must be 0 (off) or >= 100 resamples; got {bootstrap}"
        )
    covs = list(covariates or [])
    if not 0.0 < balance_alpha < 1.0:
        raise ArgumentError(
            "balance_alpha", f"balance_alpha must be in (0, 1), e.g. 0.05; got {balance_alpha}"
        )
    clustered = None
    if cluster_col is not None:
        if mann_whitney_test or bootstrap:
            raise ArgumentError(
                "cluster_col",
                "mann_whitney_test and bootstrap resample units, not clusters; "
                "drop them or cluster_col",
            )
        from splitlab.core.analysis.clusters import aggregate_clusters

        if isinstance(metrics, str):
            raise ArgumentError("metrics", "metrics must be a list of column names, not a string")
        clustered = aggregate_clusters(
            _columns(data),
            cluster_col=cluster_col,
            variant_col=variant_col,
            metrics=list(metrics),
            ratio_metrics=dict(ratio_metrics or {}),
            covariates=covs,
            in_experiment=list(in_experiment_covariates),
            period_col=period_col,
        )
        data, metrics, ratio_metrics = clustered.data, [], clustered.ratio_metrics
    cells = None
    if segment is not None:
        from splitlab.core.analysis.segments import check_segment_options, segment_cells

        check_segment_options(segment_correction, segment_min_units)
        if cluster_col is not None:
            raise ArgumentError(
                "segment",
                "segment and cluster_col together are not supported: segment the units "
                "(one row per unit) or analyse the clusters without segments",
            )
        cells = segment_cells(
            data, segment, variant_col=variant_col, control=str(control), period_col=period_col
        )
    stats, counts, rows = compute_statistics(
        data if cells is None else cells.data,
        variant_col=variant_col,
        control=str(control),
        metrics=metrics,
        covariates=covs,
        ratio_metrics=ratio_metrics,
        cupac=method in ("cupac", "auto"),
        cupac_folds=cupac_folds,
        cupac_models=cupac_models,
        cupac_time_budget_s=cupac_time_budget_s,
        cupac_params=cupac_params,
        random_state=random_state,
        progress=progress,
        period_col=period_col if cells is None else cells.column,
        in_experiment_covariates=in_experiment_covariates,
        balance_alpha=balance_alpha,
    )
    if clustered is not None:
        rows = RowCounts(
            total=clustered.summary.rows + clustered.missing_variant_rows,
            missing_variant=clustered.missing_variant_rows,
        )
    period_counts = (
        None if period_col is None else count_by_period(data, variant_col, str(control), period_col)
    )
    if cells is not None:
        stats, _, segment_stats = cells.split(stats)
    result = analyze_statistics(
        stats,
        counts,
        control=str(control),
        method=method,
        alpha=alpha,
        alternative=alternative,
        sequential=sequential,
        weights=weights,
        correction=correction,
        tuning_n=tuning_n,
        guardrails=guardrails,
        lower_is_better=lower_is_better,
        min_sample=min_sample,
        rows=rows,
        period_counts=period_counts,
        period_weights=period_weights,
    )
    if cells is not None:
        from splitlab.core.analysis.segments import analyze_segments

        by_horizon = analyze_segments(
            segment_stats,
            result,
            cells.spec,
            weights=weights,
            correction=segment_correction,
            min_units=segment_min_units,
            tuning_n=tuning_n,
            period_weights=period_weights,
        )
        result = dataclasses.replace(result, segments=by_horizon[int(sequential)])
    if guardrails or mde is not None:
        from splitlab.core.analysis.monitoring import guardrail_statuses, power_so_far

        primary = next(iter(result.metrics))
        result = dataclasses.replace(
            result,
            guardrail_tests=guardrail_statuses(
                result, dict(guardrails or {}), set(lower_is_better), tuning_n
            ),
            mde=mde,
            power_so_far=None if mde is None else power_so_far(result, primary, mde, alpha),
        )
    if clustered is not None:
        result = dataclasses.replace(result, cluster=clustered.summary)
    for metric in result.metrics.values():
        for check in metric.balance:
            if not check.used:
                warnings.warn(
                    f"{metric.name}: {check.message()}", CovariateRefusedWarning, stacklevel=2
                )
    result = _add_tests(result, stats, data, variant_col, tests, quantiles, resamples, random_state)
    if mann_whitney_test or bootstrap:
        _add_nonparametric(
            result,
            data,
            variant_col,
            str(control),
            list(metrics),
            mann_whitney_test,
            bootstrap,
            alpha,
            alternative,
            random_state,
        )
    return result


def count_by_period(
    data: Any, variant_col: str, control: str, period_col: str
) -> dict[Hashable, dict[str, int]]:
    """Units per variant of every allocation period (rows with a variant only)."""
    columns = _columns(data)
    codes, order, _ = _variants(columns[variant_col], control)
    periods, labels = period_labels(columns[period_col])
    return {
        label: {v: int(((codes == i) & (periods == j)).sum()) for i, v in enumerate(order)}
        for j, label in enumerate(labels)
    }


def _add_tests(
    result: AnalysisResult,
    stats: Sequence[MetricStatistics],
    data: Any,
    variant_col: str,
    tests: Mapping[str, str] | None,
    quantiles: Mapping[str, float] | None,
    resamples: int,
    random_state: int,
) -> AnalysisResult:
    """Every metric's named test and effect size (per-unit values in the data's row order)."""
    from splitlab.core.stats.metric_tests import check_resamples

    check_resamples(resamples)
    from splitlab.core.analysis.metric_tests import attach_tests, metric_test_specs
    from splitlab.core.analysis.metric_tests import per_unit_metrics as needing_units

    specs = metric_test_specs({m.name: m.kind for m in stats}, tests, quantiles, result.alternative)
    values: dict[str, dict[str, np.ndarray]] = {}
    wanted = needing_units(specs)
    if wanted:
        columns = _columns(data)
        codes, names = variant_labels(columns[variant_col])
        for name in wanted:
            y = _numeric(columns[name], name, "metric")
            values[name] = {v: y[(codes == names.index(v)) & ~np.isnan(y)] for v in result.variants}
    return attach_tests(
        result,
        {m.name: m.moments for m in stats},
        specs,
        values,
        n_resamples=resamples,
        random_state=random_state,
    )


def _add_nonparametric(
    result: AnalysisResult,
    data: Any,
    variant_col: str,
    control: str,
    metrics: list[str],
    mw: bool,
    bootstrap: int,
    alpha: float,
    alternative: str,
    random_state: int,
) -> None:
    columns = _columns(data)
    codes, names = variant_labels(columns[variant_col])
    for name in metrics:
        y = _numeric(columns[name], name, "metric")
        base = y[(codes == names.index(control)) & ~np.isnan(y)]
        for v, comp in result.metrics[name].comparisons.items():
            treated = y[(codes == names.index(v)) & ~np.isnan(y)]
            if mw:
                test = mann_whitney(base, treated, alternative)
                comp.extra["mann_whitney_p_value"] = test.p_value
                comp.extra["prob_superiority"] = test.prob_superiority
            if bootstrap:
                boot = bootstrap_ci(
                    base, treated, n_resamples=bootstrap, alpha=alpha, random_state=random_state
                )
                comp.extra["bootstrap_ci_lower"] = boot.ci_lower
                comp.extra["bootstrap_ci_upper"] = boot.ci_upper

"""Results sliced by a unit attribute (segments): the statistics per segment, the tests per
segment adjusted across segments, and the heterogeneity of each effect (pure).

A segment is the value of one unit attribute (``country``), or the bucket of a numeric one
(``tenure_days:0,30,180,365``: edges, buckets ``<0``, ``[0, 30)``, ..., ``>=365``). Units without
the attribute, with an empty text (a file's empty cell reads as missing too) or, for buckets,
without a number form the segment ``(missing)``.

How the statistics are built, the same way from per-unit data and from SQL: each unit belongs
to a *cell* (its segment and its allocation period); the engine's per-period statistics are
computed per cell, once, over every unit (so CUPAC's cross-fitted predictions are fit once on
all units and sliced, and missing covariates are imputed with the mean over every unit, as
without segments); :func:`split_cells` then merges the cells into the overall statistics
(per real period) and into each segment's. Each segment is analysed with the method the
overall result chose for the metric (:func:`analyze_segments`); for each metric and treatment
the segments' p-values are adjusted across segments (Holm by default, or
Benjamini-Hochberg) and their effects tested for heterogeneity (Cochran's Q, I^2).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from splitlab.core.analysis.analyze import (
    MetricStatistics,
    analyze_horizons,
    count_by_period,
    period_labels,
)
from splitlab.core.analysis.results import AnalysisResult, ComparisonResult, json_number
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.adjustment import METHODS, Method
from splitlab.core.stats.comparison import Alternative
from splitlab.core.stats.heterogeneity import Heterogeneity, cochran_q
from splitlab.core.stats.multiple import adjust_p_values
from splitlab.core.stats.sequential import DEFAULT_TUNING_N
from splitlab.core.stats.srm import SRMResult
from splitlab.core.stats.sufficient import Moments, merge_all

__all__ = [
    "DEFAULT_MIN_UNITS",
    "MAX_SEGMENTS",
    "MISSING",
    "SEGMENT_CORRECTIONS",
    "SegmentCells",
    "SegmentCorrection",
    "SegmentSpec",
    "SegmentStatistics",
    "SegmentsResult",
    "analyze_segments",
    "check_segment_count",
    "parse_segment",
    "segment_cells",
    "segment_labels",
    "split_cells",
]

MISSING = "(missing)"
"""The segment of units without the attribute (or without a number, for buckets)."""
DEFAULT_MIN_UNITS = 100
MAX_SEGMENTS = 1000
"""Most segments one analysis takes (``(missing)`` not counted): every country (249 ISO codes)
fits; an attribute with a value per unit (an id) would make as many tests as units, each too
small to mean anything, and cost the analysis (and the open results endpoint) one engine run
per value."""
"""Units with the metric per arm below which a segment is flagged as too small for its test."""
SegmentCorrection = Literal["holm", "benjamini-hochberg"]
SEGMENT_CORRECTIONS: tuple[SegmentCorrection, ...] = get_args(SegmentCorrection)
CELL_COLUMN = "__splitlab_segment_cell__"


# --- the segment: an attribute, optionally bucketed -------------------------------------------
@dataclass(frozen=True)
class SegmentSpec:
    """A unit attribute, and bucket edges when it is numeric and bucketed."""

    attribute: str
    edges: tuple[float, ...] = ()

    @property
    def text(self) -> str:
        """The spec as written (``tenure_days:0,30,180,365``)."""
        if not self.edges:
            return self.attribute
        return f"{self.attribute}:{','.join(_number(e) for e in self.edges)}"

    def bucket(self, index: int) -> str:
        """The label of bucket ``index`` (the number of edges <= the value)."""
        e = self.edges
        if index <= 0:
            return f"<{_number(e[0])}"
        if index >= len(e):
            return f">={_number(e[-1])}"
        return f"[{_number(e[index - 1])}, {_number(e[index])})"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_segment(spec: str, argument: str = "segment") -> SegmentSpec:
    """``"country"`` or ``"tenure_days:0,30,180,365"`` (increasing bucket edges)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ArgumentError(
            argument,
            f"{argument} must name a unit attribute, e.g. 'country', or a numeric one with "
            "bucket edges, e.g. 'tenure_days:0,30,180,365'",
        )
    name, _, edges_text = spec.strip().partition(":")
    name = name.strip()
    if not name:
        raise ArgumentError(argument, f"{argument}={spec!r} names no attribute before ':'")
    if not _:
        return SegmentSpec(name)
    try:
        edges = tuple(float(x) for x in edges_text.split(",") if x.strip())
    except ValueError:
        raise ArgumentError(
            argument,
            f"{argument}={spec!r}: bucket edges must be numbers separated by commas, "
            "e.g. 'tenure_days:0,30,180,365'",
        ) from None
    if not edges or not all(math.isfinite(x) for x in edges):
        raise ArgumentError(
            argument, f"{argument}={spec!r}: give at least one finite bucket edge after ':'"
        )
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ArgumentError(
            argument, f"{argument}={spec!r}: bucket edges must be strictly increasing"
        )
    return SegmentSpec(name, edges)


def _text(value: Any) -> str:
    """An attribute value as a label, as Postgres' ``->>`` writes a JSON scalar."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def check_segment_count(spec: SegmentSpec, labels: Sequence[str]) -> None:
    """Refuse an attribute with more than :data:`MAX_SEGMENTS` values (``ArgumentError`` on
    ``segment``), naming the fix."""
    count = sum(1 for label in labels if label != MISSING)
    if count > MAX_SEGMENTS:
        raise ArgumentError(
            "segment",
            f"segment={spec.text!r}: the attribute {spec.attribute!r} has {count} distinct "
            f"values, more than the {MAX_SEGMENTS} segments one analysis takes (each is a "
            "test, adjusted across all of them); segment by an attribute with fewer values, "
            f"or bucket a number with edges (e.g. '{spec.attribute}:0,30,180,365')",
        )


def segment_labels(spec: SegmentSpec, values: Any) -> tuple[np.ndarray, list[str]]:
    """Per-row codes into the returned segment labels (categories sorted, buckets in order,
    :data:`MISSING` last)."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if spec.edges:
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        known = np.isfinite(numbers)
        index = np.searchsorted(np.asarray(spec.edges), numbers, side="right")
        present = sorted(set(index[known].tolist()))
        names = [spec.bucket(i) for i in present]
        remap = np.full(len(spec.edges) + 1, -1, dtype=np.int64)
        remap[present] = np.arange(len(present))
        codes = np.where(known, remap[index], -1)
    else:
        raw, uniques = pd.factorize(series, sort=False)
        texts = [_text(u.item() if hasattr(u, "item") else u) for u in uniques]
        # An empty text is missing: a CSV's empty cell reads as NaN, the analyzer's NULLIF.
        names = sorted(set(texts) - {""})
        position = {name: i for i, name in enumerate(names)}  # not names.index: O(k^2)
        lookup = np.array([position.get(t, -1) for t in texts] + [-1], dtype=np.int64)
        codes = lookup[np.where(raw < 0, len(texts), raw)]
    if (codes < 0).any():
        names = [*names, MISSING]
        codes = np.where(codes < 0, len(names) - 1, codes)
    return codes.astype(np.int64), names


# --- cells: (segment, period) -> statistics ----------------------------------------------------
@dataclass(frozen=True)
class SegmentStatistics:
    """One segment's statistics, as :func:`analyze_statistics` takes them."""

    label: str
    metrics: list[MetricStatistics]
    counts: dict[str, int]
    period_counts: dict[Hashable, dict[str, int]] | None = None


@dataclass(frozen=True)
class SegmentCells:
    """Per-unit data with a cell column: feed ``data`` and ``column`` (as ``period_col``) to
    :func:`compute_statistics`, then :meth:`split` its answer."""

    spec: SegmentSpec
    data: dict[str, Any]
    column: str
    cells: dict[Hashable, tuple[str, Hashable]]
    """Cell code -> (segment, period); the period is 0 without a period column."""
    cell_counts: dict[Hashable, dict[str, int]]
    periods: bool
    """Whether the data had a period column (else the overall result has no periods)."""

    def split(
        self, metrics: Sequence[MetricStatistics]
    ) -> tuple[
        list[MetricStatistics], dict[Hashable, dict[str, int]] | None, list[SegmentStatistics]
    ]:
        return split_cells(metrics, self.cells, self.cell_counts, periods=self.periods)


def segment_cells(
    data: Any,
    segment: str | SegmentSpec,
    *,
    variant_col: str,
    control: str,
    period_col: str | None = None,
) -> SegmentCells:
    """Attach each unit's cell (segment x allocation period) to per-unit ``data``."""
    from splitlab.core.analysis.analyze import _columns

    spec = segment if isinstance(segment, SegmentSpec) else parse_segment(segment)
    columns = _columns(data)
    if spec.attribute not in columns:
        shown = ", ".join(sorted(columns)[:20])
        raise ArgumentError(
            "segment",
            f"segment attribute {spec.attribute!r} is not a column of the data; "
            f"available columns: {shown}",
        )
    seg_codes, names = segment_labels(spec, columns[spec.attribute])
    check_segment_count(spec, names)
    if period_col is not None:
        if period_col not in columns:
            raise ArgumentError(
                "period_col", f"period_col {period_col!r} is not a column of the data"
            )
        per_codes, per_labels = period_labels(columns[period_col])
    else:
        per_codes, per_labels = np.zeros(seg_codes.shape[0], dtype=np.int64), [0]
    cell = seg_codes * len(per_labels) + per_codes
    cells: dict[Hashable, tuple[str, Hashable]] = {
        s * len(per_labels) + p: (name, per_labels[p])
        for s, name in enumerate(names)
        for p in range(len(per_labels))
    }
    columns = {**columns, CELL_COLUMN: cell}
    counts = count_by_period(columns, variant_col, control, CELL_COLUMN)
    return SegmentCells(spec, columns, CELL_COLUMN, cells, counts, period_col is not None)


def split_cells(
    metrics: Sequence[MetricStatistics],
    cells: Mapping[Hashable, tuple[str, Hashable]],
    cell_counts: Mapping[Hashable, Mapping[str, int]],
    *,
    periods: bool,
) -> tuple[list[MetricStatistics], dict[Hashable, dict[str, int]] | None, list[SegmentStatistics]]:
    """Statistics whose ``periods`` are keyed by cell -> (the overall statistics with their
    real periods, the overall units per period, each segment's statistics).

    ``periods=False``: there are no allocation periods (every cell's period is the same one),
    so neither the overall statistics nor the segments' carry any."""
    present = [c for c in cells if c in cell_counts]
    variants = list(next(iter(cell_counts.values()))) if cell_counts else []
    period_ids = list(dict.fromkeys(cells[c][1] for c in present))
    segment_ids = list(dict.fromkeys(cells[c][0] for c in present))

    def total(codes: Sequence[Hashable]) -> dict[str, int]:
        return {v: sum(int(cell_counts[c].get(v, 0)) for c in codes) for v in variants}

    overall_counts = {p: total([c for c in present if cells[c][1] == p]) for p in period_ids}
    overall: list[MetricStatistics] = []
    by_segment: dict[str, list[MetricStatistics]] = {s: [] for s in segment_ids}
    for stats in metrics:
        parts = stats.periods or {}
        k = next(iter(stats.moments.values())).k
        variant_names = list(stats.moments)
        real = {
            p: _merged(parts, [c for c in present if cells[c][1] == p], variant_names, k)
            for p in period_ids
        }
        overall.append(_replace_stats(stats, stats.moments, real if periods else None))
        for s in segment_ids:
            mine = [c for c in present if cells[c][0] == s]
            own = {cells[c][1]: _merged(parts, [c], variant_names, k) for c in mine}
            whole = _merged(parts, mine, variant_names, k)
            by_segment[s].append(_replace_stats(stats, whole, own if periods else None))
    segments = []
    for s in segment_ids:
        mine = [c for c in present if cells[c][0] == s]
        segments.append(
            SegmentStatistics(
                s,
                by_segment[s],
                total(mine),
                {cells[c][1]: total([c]) for c in mine} if periods else None,
            )
        )
    return overall, (overall_counts if periods else None), segments


def _merged(
    parts: Mapping[Hashable, Mapping[str, Moments]],
    codes: Sequence[Hashable],
    variants: Sequence[str],
    k: int,
) -> dict[str, Moments]:
    """Per variant, the merge of these cells' statistics."""
    return {
        v: merge_all((parts[c][v] for c in codes if c in parts and v in parts[c]), k)
        for v in variants
    }


def _replace_stats(
    stats: MetricStatistics,
    moments: Mapping[str, Moments],
    periods: Mapping[Hashable, Mapping[str, Moments]] | None,
) -> MetricStatistics:
    import dataclasses

    return dataclasses.replace(stats, moments=dict(moments), periods=periods)


# --- the analysis per segment -----------------------------------------------------------------
@dataclass(frozen=True)
class SegmentMetric:
    """One metric in one segment: the method used and each treatment's comparison, its
    ``p_value_adjusted`` adjusted across segments."""

    method: str
    reason: str
    comparisons: dict[str, ComparisonResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "reason": self.reason,
            "comparisons": {v: c.to_dict() for v, c in self.comparisons.items()},
        }


@dataclass(frozen=True)
class SegmentResult:
    label: str
    units: dict[str, int]
    srm: SRMResult
    metrics: dict[str, SegmentMetric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "units": dict(self.units),
            "srm_p_value": json_number(self.srm.p_value),
            "srm_status": self.srm.status,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
        }


@dataclass(frozen=True)
class SegmentWarning:
    """A segment with fewer units than its test needs in some arm."""

    segment: str
    units: int
    """The fewest units with a metric in any arm of the segment."""
    minimum: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "units": self.units,
            "minimum": self.minimum,
            "message": self.message,
        }


def _heterogeneity_dict(h: Heterogeneity) -> dict[str, Any]:
    return {
        "q": json_number(h.q),
        "df": h.df,
        "p_value": json_number(h.p_value),
        "i_squared": json_number(h.i_squared),
        "pooled_effect": json_number(h.pooled_effect),
        "segments": h.groups,
        "left_out": h.left_out,
    }


@dataclass(frozen=True)
class SegmentsResult:
    """Every segment's results, the heterogeneity tests and the warnings (JSON ``segments``)."""

    attribute: str
    edges: tuple[float, ...]
    correction: str
    min_units: int
    sequential: bool
    segments: dict[str, SegmentResult]
    heterogeneity: dict[str, dict[str, Heterogeneity]]
    """Per metric and treatment: Cochran's Q over the segments' fixed-horizon effects."""
    warnings: list[SegmentWarning] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "edges": list(self.edges) or None,
            "correction": self.correction,
            "min_units": self.min_units,
            "segments": {s: r.to_dict() for s, r in self.segments.items()},
            "heterogeneity": {
                name: {v: _heterogeneity_dict(h) for v, h in by.items()}
                for name, by in self.heterogeneity.items()
            },
            "warnings": [w.to_dict() for w in self.warnings],
        }


def check_segment_options(correction: str, min_units: int) -> None:
    if correction not in SEGMENT_CORRECTIONS:
        raise ArgumentError(
            "segment_correction",
            f"segment_correction must be one of {list(SEGMENT_CORRECTIONS)}; got {correction!r}",
        )
    if isinstance(min_units, bool) or not isinstance(min_units, int) or min_units < 2:
        raise ArgumentError(
            "segment_min_units",
            f"segment_min_units must be an integer >= 2 (units per arm); got {min_units!r}",
        )


def analyze_segments(
    segments: Sequence[SegmentStatistics],
    overall: AnalysisResult,
    spec: SegmentSpec,
    *,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    correction: SegmentCorrection = "holm",
    min_units: int = DEFAULT_MIN_UNITS,
    tuning_n: float = DEFAULT_TUNING_N,
    period_weights: Mapping[Hashable, Mapping[str, float]] | None = None,
) -> tuple[SegmentsResult, SegmentsResult]:
    """Each segment analysed with the overall result's method per metric, at both horizons
    (fixed, sequential). ``overall`` gives the control, variants, alpha, alternative and the
    methods (its horizon does not matter)."""
    check_segment_options(correction, min_units)
    order = overall.variants
    control = overall.control
    per: dict[str, dict[str, Any]] = {}
    srms: dict[str, SRMResult] = {}
    for seg in segments:
        per[seg.label] = {}
        stratified = seg.period_counts is not None and len(seg.period_counts) > 1
        by_method: dict[str, list[MetricStatistics]] = {}
        for stats in seg.metrics:
            by_method.setdefault(overall.metrics[stats.name].method, []).append(stats)
        for method, group in by_method.items():  # one engine run per method and segment
            horizons = analyze_horizons(
                group,
                {v: seg.counts.get(v, 0) for v in order},
                control=control,
                method=_method(method),
                alpha=overall.alpha,
                alternative=_alternative(overall.alternative),
                weights=weights,
                correction="none",
                tuning_n=tuning_n,
                lower_is_better=[m.name for m in group if overall.metrics[m.name].lower_is_better],
                period_counts=seg.period_counts if stratified else None,
                period_weights=period_weights if stratified else None,
                inapplicable="unadjusted",
            )
            per[seg.label].update(dict.fromkeys((m.name for m in group), horizons))
            srms[seg.label] = horizons.fixed.srm
    labels = [s.label for s in segments]
    units = {s.label: {v: int(s.counts.get(v, 0)) for v in order} for s in segments}
    names = list(overall.metrics)
    heterogeneity: dict[str, dict[str, Heterogeneity]] = {}
    for name in names:
        heterogeneity[name] = {}
        for v in order[1:]:
            comps = [per[s][name].fixed.metrics[name].comparisons[v].comparison for s in labels]
            heterogeneity[name][v] = cochran_q([c.effect for c in comps], [c.se for c in comps])
    warnings = _warnings(labels, names, order, per, min_units)
    out = []
    for sequential in (False, True):
        built: dict[str, dict[str, SegmentMetric]] = {s: {} for s in labels}
        for name in names:
            for v in order[1:]:
                found = [per[s][name].at(sequential).metrics[name].comparisons[v] for s in labels]
                adjusted = adjust_p_values([c.comparison.p_value for c in found], correction)
                for s, c, p in zip(labels, found, adjusted, strict=True):
                    metric = per[s][name].at(sequential).metrics[name]
                    entry = built[s].setdefault(
                        name, SegmentMetric(metric.method, metric.reason, {})
                    )
                    entry.comparisons[v] = ComparisonResult(
                        c.comparison,
                        float(p),
                        c.chance_to_beat_control,
                        c.expected_loss,
                    )
        out.append(
            SegmentsResult(
                attribute=spec.attribute,
                edges=spec.edges,
                correction=correction,
                min_units=min_units,
                sequential=sequential,
                segments={s: SegmentResult(s, units[s], srms[s], built[s]) for s in labels},
                heterogeneity=heterogeneity,
                warnings=warnings,
            )
        )
    return out[0], out[1]


def _method(value: str) -> Method:
    if value not in METHODS:
        raise ArgumentError("method", f"method must be one of {list(METHODS)}; got {value!r}")
    return value


def _alternative(value: str) -> Alternative:
    from splitlab.core.stats.comparison import check_alternative

    return check_alternative(value)


def _warnings(
    labels: Sequence[str],
    names: Sequence[str],
    order: Sequence[str],
    per: Mapping[str, Mapping[str, Any]],
    min_units: int,
) -> list[SegmentWarning]:
    """One warning per segment whose smallest arm (units with a metric) is below the minimum."""
    out = []
    for s in labels:
        smallest: tuple[int, str, str] | None = None
        for name in names:
            metric = per[s][name].fixed.metrics[name]
            for v, c in metric.comparisons.items():
                for n, arm in ((c.comparison.n_control, order[0]), (c.comparison.n_treatment, v)):
                    if smallest is None or n < smallest[0]:
                        smallest = (int(n), arm, name)
        if smallest is not None and smallest[0] < min_units:
            n, arm, name = smallest
            out.append(
                SegmentWarning(
                    s,
                    n,
                    min_units,
                    f"segment {s!r} is too small for its test: {n} units in variant {arm!r} "
                    f"with metric {name!r}, below the minimum of {min_units} per variant; its "
                    "p-value and CI rest on a normal approximation that needs more units",
                )
            )
    return out

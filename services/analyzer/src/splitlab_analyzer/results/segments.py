"""Results by segment in the analyzer: the segment in SQL, and its rows -> statistics (pure).

A unit's segment is an attribute of its FIRST exposure (``experiment_units.attributes``, kept
at ingestion): stable, and fixed before the treatment could move it. The results query joins
it per unit and adds it to the one aggregation's ``GROUP BY`` (variant, allocation period,
segment, missing pattern), so the segmented answer costs one query, like the plain one, with
a few more rows. A categorical attribute is its text (``->>``; absent, JSON null or an empty
text: the segment ``(missing)``); a bucketed one (``tenure_days:0,30,180,365``) is the bucket
index of a JSON number (``width_bucket``: the number of edges <= the value, as
:func:`splitlab.core.analysis.segments.segment_labels`), anything else ``(missing)``.

Reading: each (segment, period) pair becomes a *cell* that stands in for the allocation period
of :func:`~splitlab_analyzer.results.statistics.read_statistics`, so the imputed covariate
means and the covariates kept are those of every analyzed unit (as ``splitlab.analyze`` does
with a segment); :func:`splitlab.core.analysis.segments.split_cells` then gives the overall
statistics (per real period) and each segment's.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from splitlab.core.analysis.segments import (
    MISSING,
    SegmentSpec,
    SegmentStatistics,
    check_segment_count,
    split_cells,
)
from splitlab.core.errors import ArgumentError
from splitlab.platform.errors import InvalidInputError
from splitlab_analyzer.results.statistics import ExperimentStatistics
from splitlab_analyzer.rollups.repository import Bind

SEGMENT_COLUMN = "seg"


def segment_join(key: str) -> str:
    """The join that brings each unit's first-exposure attributes (as ``eu``)."""
    return f" LEFT JOIN experiment_units eu ON eu.experiment_key = {key} AND eu.unit_id = u.unit_id"


def segment_expression(spec: SegmentSpec, bind: Bind, attributes: str = "eu.attributes") -> str:
    """The unit's segment: the attribute's text (an empty text is missing, as an empty cell
    of a file read by ``splitlab analyze``), or its bucket index (NULL: missing), from the
    JSON column ``attributes``."""
    name = bind("seg_attr", spec.attribute)
    if not spec.edges:
        return f"NULLIF({attributes} ->> {name}, '')"
    edges = bind("seg_edges", list(spec.edges))
    return (
        f"(CASE WHEN jsonb_typeof({attributes} -> {name}) = 'number' "
        f"THEN width_bucket(({attributes} ->> {name})::float8, CAST({edges} AS float8[])) END)"
    )


def _label(spec: SegmentSpec, value: Any) -> str:
    if value is None:
        return MISSING
    return spec.bucket(int(value)) if spec.edges else str(value)


def _order(spec: SegmentSpec, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Segment labels as the library orders them: categories sorted (buckets by index), then
    the missing segment."""
    values = {r[SEGMENT_COLUMN] for r in rows if r[SEGMENT_COLUMN] is not None}
    ordered = sorted(values, key=int) if spec.edges else sorted(values, key=str)
    labels = [_label(spec, v) for v in ordered]
    if any(r[SEGMENT_COLUMN] is None for r in rows):
        labels.append(MISSING)
    return labels


@dataclass(frozen=True)
class SegmentedRows:
    """The query's rows with each (segment, period) renumbered as a cell."""

    rows: list[dict[str, Any]]
    cells: dict[Hashable, tuple[str, Hashable]]
    labels: list[str]


def cell_rows(spec: SegmentSpec, rows: Sequence[Mapping[str, Any]]) -> SegmentedRows:
    """Rows whose ``allocation_period`` is their cell; a 422 on ``segment`` past
    :data:`~splitlab.core.analysis.segments.MAX_SEGMENTS` values."""
    labels = _order(spec, rows)
    try:
        check_segment_count(spec, labels)
    except ArgumentError as exc:
        raise InvalidInputError(exc.message, field=exc.argument) from None
    periods = sorted({int(r.get("allocation_period") or 0) for r in rows})
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for r in rows:
        label = _label(spec, r[SEGMENT_COLUMN])
        period = int(r.get("allocation_period") or 0)
        cell = index[label] * len(periods) + periods.index(period)
        out.append({**r, "allocation_period": cell})
    cells: dict[Hashable, tuple[str, Hashable]] = {
        s * len(periods) + j: (label, p)
        for s, label in enumerate(labels)
        for j, p in enumerate(periods)
    }
    return SegmentedRows(out, cells, labels)


def split_statistics(
    stats: ExperimentStatistics, cells: Mapping[Hashable, tuple[str, Hashable]]
) -> tuple[ExperimentStatistics, list[SegmentStatistics]]:
    """Statistics read per cell -> the overall ones (per real period) and each segment's."""
    present: dict[Hashable, Mapping[str, int]] = {
        c: n for c, n in stats.period_counts.items() if sum(n.values()) > 0
    }
    metrics, period_counts, segments = split_cells(stats.metrics, cells, present, periods=True)
    counts = {int(str(p)): dict(n) for p, n in (period_counts or {}).items()}
    return replace(stats, metrics=metrics, period_counts=counts), segments


def unknown_attribute(
    spec: SegmentSpec, known: Sequence[str], experiment_key: str
) -> InvalidInputError:
    shown = ", ".join(known) if known else "none (the exposures carry no attributes)"
    return InvalidInputError(
        f"segment={spec.text!r}: no unit of the experiment has the attribute "
        f"{spec.attribute!r} at its first exposure; attributes that exist: {shown}. An "
        "exposure records only the /assign attributes the experiment names in its "
        "segment_attributes (besides those its targeting reads and its hash_attribute): to "
        f"segment by {spec.attribute!r}, add it to the experiment's segment_attributes "
        f"(splitlab experiments update {experiment_key} --segment-attribute "
        f"{spec.attribute}, or PATCH /experiments/{experiment_key} with "
        f'{{"segment_attributes": ["{spec.attribute}"]}}) and send it to /assign; '
        "exposures from then on record it (units exposed before keep what their first "
        "exposure recorded)",
        field="segment",
    )

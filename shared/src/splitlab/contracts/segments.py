"""The JSON shape of the results per segment (``SegmentsResult.to_dict()``, the ``segments``
key of an analysis) as pydantic schemas."""

from __future__ import annotations

from pydantic import Field

from splitlab.contracts.analysis import ComparisonBody, Number, Open

__all__ = [
    "HeterogeneityBody",
    "SegmentBody",
    "SegmentMetricBody",
    "SegmentWarningBody",
    "SegmentsBody",
]


class SegmentMetricBody(Open):
    method: str = Field(description="The overall result's method for the metric.")
    reason: str
    comparisons: dict[str, ComparisonBody] = Field(
        description="Per treatment; p_value_adjusted is adjusted across segments."
    )


class SegmentBody(Open):
    units: dict[str, int] = Field(description="Units per variant in the segment.")
    srm_p_value: Number
    srm_status: str
    metrics: dict[str, SegmentMetricBody]


class HeterogeneityBody(Open):
    """Cochran's Q test of one common effect across the segments."""

    q: Number
    df: int
    p_value: Number
    i_squared: Number = Field(description="Share of the spread beyond sampling error, [0, 1].")
    pooled_effect: Number = Field(description="Inverse-variance pooled effect.")
    segments: int = Field(description="Segments in the test (finite effect and SE).")
    left_out: int


class SegmentWarningBody(Open):
    segment: str
    units: int = Field(description="The fewest units with a metric in any arm of the segment.")
    minimum: int
    message: str


class SegmentsBody(Open):
    """Results per segment of a unit attribute (its value at the unit's first exposure)."""

    attribute: str
    edges: list[float] | None = Field(description="Bucket edges of a numeric attribute.")
    correction: str = Field(description="Across segments: holm or benjamini-hochberg.")
    min_units: int = Field(description="Units per arm below which a segment is warned about.")
    segments: dict[str, SegmentBody]
    heterogeneity: dict[str, dict[str, HeterogeneityBody]] = Field(
        description="Per metric and treatment."
    )
    warnings: list[SegmentWarningBody]

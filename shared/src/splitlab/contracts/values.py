"""The limit on the numbers SplitLab stores and aggregates: outcome values, unit features.

Both edges (the router's ``/outcomes``, the analyzer's ``/unit-features``), the event contract
(so the analyzer's consumer dead-letters an out-of-range event from any producer) and the
analyzer's aggregation SQL (which leaves out rows stored before the limit existed) read
:data:`MAX_ABS_VALUE` from here, so there is one number to change.

Why 1e12: Postgres adds ``float8`` with an overflow check, so two values of 1e308 in one sum
raise "value out of range" and fail the whole query. With every value within 1e12, a unit's sum
of even a million events stays within 1e18, and the centred sums of squares of a billion such
units within 1e45: far from the float8 limit (1.8e308), with no loss of the digits that
matter. 1e12 is beyond any revenue, count or latency SplitLab measures (a trillion per event).
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ABS_VALUE = 1e12
"""Outcome values and unit features must lie in ``[-MAX_ABS_VALUE, MAX_ABS_VALUE]``."""
VALUE_RULE = f"a finite number between -{MAX_ABS_VALUE:.0e} and {MAX_ABS_VALUE:.0e}"


def check_value(value: float) -> float:
    """``value`` when it is finite and within :data:`MAX_ABS_VALUE`; else ``ValueError``."""
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise ValueError(f"must be {VALUE_RULE} (the limit of stored values); got {value!r}")
    return value


BoundedValue = Annotated[
    float,
    AfterValidator(check_value),
    Field(json_schema_extra={"minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE}),
]
"""A float field held to :data:`MAX_ABS_VALUE` (pydantic)."""

__all__ = ["MAX_ABS_VALUE", "VALUE_RULE", "BoundedValue", "check_value"]

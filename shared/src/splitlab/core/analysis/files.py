"""An analysis of an uploaded file, as the web console asks for it: which analysis and the file's
checks (the run and its report are ``splitlab.reports.files.run_analysis``).

Two analyses: *variance reduction* (``splitlab.analyze`` on a row per unit: a variant column,
metric columns, optional covariates, a method or ``auto``) and *synthetic control*
(``splitlab.synthetic_control`` on a long panel: unit, time, outcome, the treated unit and
the intervention time). ``check_frame`` says what is wrong in which column and row before the
work is queued.

Rows are numbered as a person reading the file counts them: row 1 is the first data row (line 2
of a CSV, under its header).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from splitlab.core.analysis.segments import SegmentSpec, parse_segment
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.adjustment import METHODS, Method
from splitlab.core.stats.metric_tests import check_test

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KINDS",
    "AnalysisSpec",
    "FileCheckError",
    "SyntheticControlSpec",
    "VarianceReductionSpec",
    "check_frame",
    "read_upload",
    "spec_from_dict",
    "spec_to_dict",
]

KINDS = ("variance_reduction", "synthetic_control")
PARQUET_MAGIC = b"PAR1"


class FileCheckError(ValueError):
    """What is wrong with an uploaded file; ``column`` and ``row`` (1-based data row) when the
    fault sits in one place."""

    def __init__(self, message: str, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


@dataclass(frozen=True)
class VarianceReductionSpec:
    """A row per unit (or per session with ``cluster_col``): compare every variant with
    ``control`` on each metric; the options are ``splitlab.analyze``'s of the same names."""

    variant_col: str
    control: str
    metrics: list[str]
    covariates: list[str] = field(default_factory=list)
    method: Method = "auto"
    kind: Literal["variance_reduction"] = "variance_reduction"
    segment: str | None = None
    """Results per segment of a column too: ``country``, or ``tenure_days:0,30,180,365``."""
    tests: dict[str, str] = field(default_factory=dict)
    """A metric's named test, e.g. ``{"revenue": "mann_whitney"}`` (Welch when absent)."""
    cluster_col: str | None = None
    """The randomisation unit's column when the file has several rows per unit."""
    in_experiment_covariates: list[str] = field(default_factory=list)
    """Columns measured during the experiment that the treatment cannot move (CUNOPAC)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ArgumentError(
                "method", f"method must be one of {list(METHODS)}, not {self.method!r}"
            )
        if not self.metrics:
            raise ArgumentError("metrics", "metrics: name at least one metric column")
        if self.segment is not None:
            parse_segment(self.segment)  # a malformed segment raises here, naming it
        for metric, test in self.tests.items():
            if metric not in self.metrics:
                raise ArgumentError(
                    "tests",
                    f"tests: {metric!r} is not one of the metric columns {self.metrics}; "
                    "write METRIC=TEST for a metric you analyse",
                )
            check_test(test)

    @property
    def segment_spec(self) -> SegmentSpec | None:
        return None if self.segment is None else parse_segment(self.segment)

    @property
    def segment_column(self) -> str | None:
        spec = self.segment_spec
        return None if spec is None else spec.attribute

    @property
    def columns(self) -> list[str]:
        extra = [c for c in (self.segment_column, self.cluster_col) if c is not None]
        return [
            self.variant_col, *self.metrics, *self.covariates, *self.in_experiment_covariates,
            *extra,
        ]  # fmt: skip

    @property
    def numeric_columns(self) -> list[str]:
        """The columns read as numbers (a segment with bucket edges is a number too)."""
        spec = self.segment_spec
        segment = [spec.attribute] if spec is not None and spec.edges else []
        return [*self.metrics, *self.covariates, *self.in_experiment_covariates, *segment]


@dataclass(frozen=True)
class SyntheticControlSpec:
    """A long panel (a row per unit and period): the effect on ``treated`` from ``time``
    ``intervention_time`` on."""

    unit_col: str
    time_col: str
    outcome_col: str
    treated: str
    intervention_time: str
    kind: Literal["synthetic_control"] = "synthetic_control"

    @property
    def columns(self) -> list[str]:
        return [self.unit_col, self.time_col, self.outcome_col]


AnalysisSpec = VarianceReductionSpec | SyntheticControlSpec


def spec_to_dict(spec: AnalysisSpec) -> dict[str, Any]:
    return asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> AnalysisSpec:
    """The spec ``spec_to_dict`` wrote (the task's argument, stored beside the file)."""
    kind = data.get("kind")
    values = {k: v for k, v in data.items() if k != "kind"}
    if kind == "variance_reduction":
        return VarianceReductionSpec(**values)
    if kind == "synthetic_control":
        return SyntheticControlSpec(**values)
    raise ValueError(f"kind must be one of {list(KINDS)}, not {kind!r}")


def file_format(head: bytes) -> Literal["csv", "parquet"]:
    """``parquet`` when the bytes start with Parquet's magic number, else ``csv``."""
    return "parquet" if head.startswith(PARQUET_MAGIC) else "csv"


def read_upload(path: Path) -> pd.DataFrame:
    """Read an uploaded CSV or Parquet file (told apart by content, not by name)."""
    import pandas as pd

    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise FileCheckError("the file is empty; upload a CSV with a header row or a Parquet file")
    try:
        if file_format(head) == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        row = _parser_row(message)
        where = f"row {row} (line {row + 1}): " if row is not None else ""
        raise FileCheckError(
            f"the file could not be read as CSV or Parquet: {where}{message}", row=row
        ) from None


def _parser_row(message: str) -> int | None:
    """The data row of pandas' "Error tokenizing data. C error: ... in line N" (line N of the
    file, so row N - 1)."""
    marker = " in line "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split()[0].rstrip(",.")
    return int(digits) - 1 if digits.isdigit() else None


def check_frame(frame: pd.DataFrame, spec: AnalysisSpec) -> pd.DataFrame:
    """Check the columns ``spec`` names and return the frame with them typed (numbers as
    floats). Raises ``FileCheckError`` naming the column and the first row at fault."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    for name in spec.columns:
        if name not in columns:
            shown = ", ".join(repr(c) for c in columns[:30])
            raise FileCheckError(
                f"column {name!r} is not in the file; its columns are {shown}", column=name
            )
    if len(frame) == 0:
        raise FileCheckError("the file has a header but no rows")
    numeric = (
        spec.numeric_columns if isinstance(spec, VarianceReductionSpec) else [spec.outcome_col]
    )
    required = (
        [spec.variant_col, *spec.metrics, *([spec.cluster_col] if spec.cluster_col else [])]
        if isinstance(spec, VarianceReductionSpec)
        else [spec.unit_col, spec.time_col, spec.outcome_col]
    )
    out = frame.copy()
    for name in required:
        missing = frame[name].isna().to_numpy()
        if missing.any():
            row = int(missing.argmax()) + 1
            raise FileCheckError(f"column {name!r}, row {row}: the value is empty", name, row)
    for name in numeric:
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        bad = (values.isna() & raw.notna()).to_numpy()
        if bad.any():
            row = int(bad.argmax()) + 1
            raise FileCheckError(
                f"column {name!r}, row {row}: {str(raw.iloc[row - 1])[:80]!r} is not a number",
                name,
                row,
            )
        infinite = ~values.map(lambda v: math.isfinite(v) if pd.notna(v) else True).to_numpy()
        if infinite.any():
            row = int(infinite.argmax()) + 1
            raise FileCheckError(f"column {name!r}, row {row}: the value is infinite", name, row)
        out[name] = values.astype(float)
    if isinstance(spec, VarianceReductionSpec):
        variants = out[spec.variant_col].astype(str)
        out[spec.variant_col] = variants
        seen = sorted(set(variants))
        if spec.control not in seen:
            raise FileCheckError(
                f"column {spec.variant_col!r}: no row has the control variant {spec.control!r}; "
                f"its values are {seen[:20]}",
                spec.variant_col,
            )
        if len(seen) < 2:
            raise FileCheckError(
                f"column {spec.variant_col!r}: only {spec.control!r} appears; an analysis needs "
                "a treatment too",
                spec.variant_col,
            )
    else:
        units = out[spec.unit_col].astype(str)
        out[spec.unit_col] = units
        if spec.treated not in set(units):
            raise FileCheckError(
                f"column {spec.unit_col!r}: no row has the treated unit {spec.treated!r}",
                spec.unit_col,
            )
        times = pd.to_numeric(out[spec.time_col], errors="coerce")
        if times.notna().all():  # numbered periods, else ISO dates (the estimator parses them)
            out[spec.time_col] = times
    return out


def intervention_time(frame: pd.DataFrame, spec: SyntheticControlSpec) -> Any:
    """``spec.intervention_time`` in the type of the time column (a number for numbered
    periods)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(frame[spec.time_col]):
        try:
            value = float(spec.intervention_time)
        except ValueError:
            raise FileCheckError(
                f"intervention time {spec.intervention_time!r} is not a number, but column "
                f"{spec.time_col!r} holds numbered periods",
                spec.time_col,
            ) from None
        return int(value) if value.is_integer() else value
    return spec.intervention_time

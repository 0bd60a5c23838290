"""The panel a synthetic control works on: validation, pivoting and the missing-cell report.

A panel arrives as a long table (one row per unit and period). ``build_panel`` checks it,
pivots it to a units x periods matrix, and splits units into the treated group and the donor
pool. Every bad argument raises ``ValueError`` naming the argument and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from splitlab.core.errors import ArgumentError

FloatArray = npt.NDArray[np.float64]

MIN_PRE_PERIODS = 3
"""Fewest pre-intervention periods accepted: below this no fit can be judged."""

CovariateSpec = Sequence[str] | Mapping[str, tuple[Any, Any]] | None
"""Covariate columns, optionally each with the (first, last) periods to average over."""


@dataclass(frozen=True)
class Panel:
    """A balanced panel: ``outcomes[i, t]`` is unit ``units[i]`` in period ``times[t]``."""

    units: list[str]
    times: list[Any]
    """Period labels in order, as plain Python values (int, float or ``pd.Timestamp``)."""
    outcomes: FloatArray
    treated: list[int]
    """Row indices of the treated units."""
    donors: list[int]
    """Row indices of the donor pool (every unit that is not treated)."""
    n_pre: int
    """Number of periods before the intervention; period ``n_pre`` is the first treated one."""
    predictors: FloatArray | None
    """Covariates averaged over their periods, one row per unit (units x covariates)."""
    predictor_names: list[str]
    calendar: FloatArray
    """Calendar features per period (periods x features), possibly with zero columns."""
    calendar_names: list[str]

    @property
    def n_periods(self) -> int:
        return len(self.times)

    def treated_outcome(self) -> FloatArray:
        """The treated series: the mean over treated units when there are several."""
        return np.asarray(self.outcomes[self.treated].mean(axis=0), dtype=np.float64)

    def treated_predictors(self) -> FloatArray | None:
        if self.predictors is None:
            return None
        return np.asarray(self.predictors[self.treated].mean(axis=0), dtype=np.float64)


def missing_cells(
    data: pd.DataFrame, unit_col: str, time_col: str, outcome_col: str
) -> pd.DataFrame:
    """Units with missing (unit, period) cells: ``unit``, ``missing``, ``first_missing``.

    A cell is missing when the row is absent or its outcome is NaN. Sorted by count, largest first.
    """
    wide = data.pivot_table(index=unit_col, columns=time_col, values=outcome_col, dropna=False)
    all_times = sorted(pd.unique(data[time_col]))
    wide = wide.reindex(columns=all_times)
    counts = wide.isna().sum(axis=1)
    rows = []
    missing = wide.isna().to_numpy()
    for row, (unit, count) in enumerate(counts.items()):
        if count:
            first = wide.columns[missing[row]][0]
            rows.append({"unit": unit, "missing": int(count), "first_missing": first})
    report = pd.DataFrame(rows, columns=["unit", "missing", "first_missing"])
    return report.sort_values("missing", ascending=False, kind="stable").reset_index(drop=True)


def build_panel(
    data: pd.DataFrame,
    *,
    unit_col: str,
    time_col: str,
    outcome_col: str,
    treated: Any,
    intervention_time: Any,
    covariates: CovariateSpec = None,
    drop_incomplete: bool = False,
) -> tuple[Panel, list[str]]:
    """Validate and pivot ``data``; return the panel and the warnings raised while building it."""
    warnings: list[str] = []
    if not isinstance(data, pd.DataFrame):
        raise ArgumentError(
            "data", "data: expected a pandas DataFrame with one row per unit and period"
        )
    covariate_periods = _covariate_periods(covariates)
    for arg, column in (
        ("unit_col", unit_col),
        ("time_col", time_col),
        ("outcome_col", outcome_col),
        *(("covariates", c) for c in covariate_periods),
    ):
        if column not in data.columns:
            raise ArgumentError(
                arg,
                f"{arg}: column {column!r} is not in the data; available columns: "
                f"{', '.join(map(str, data.columns))}",
            )
    if data.empty:
        raise ArgumentError("data", "data: the table has no rows")
    frame = data[[unit_col, time_col, outcome_col, *covariate_periods]].copy()
    frame[unit_col] = frame[unit_col].astype(str)
    frame[time_col] = _coerce_times(frame[time_col], "time_col", time_col)
    for arg, column in (
        ("outcome_col", outcome_col),
        *(("covariates", c) for c in covariate_periods),
    ):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            raise ArgumentError(
                arg,
                f"{arg}: column {column!r} must be numeric; found {frame[column][bad].iloc[0]!r}",
            )
        frame[column] = values.astype(float)
    if frame[frame[outcome_col].notna()].duplicated([unit_col, time_col]).any():
        dup = frame[frame.duplicated([unit_col, time_col], keep=False)].iloc[0]
        raise ArgumentError(
            "data",
            f"data: more than one row for unit {dup[unit_col]!r} at {time_col}={dup[time_col]!r}; "
            "aggregate to one row per unit and period first",
        )

    treated_units = _treated_units(treated, frame[unit_col])
    start = _coerce_scalar_time(intervention_time, frame[time_col])
    times = sorted(pd.unique(frame[time_col]))
    if not (times[0] < start <= times[-1]):
        raise ArgumentError(
            "intervention_time",
            f"intervention_time: {intervention_time!r} is outside the data ({time_col} runs from "
            f"{_show(times[0])} to {_show(times[-1])}); choose a time after the first period "
            "and no later than the last",
        )
    n_pre = sum(1 for t in times if t < start)
    if n_pre < MIN_PRE_PERIODS:
        raise ArgumentError(
            "intervention_time",
            f"intervention_time: only {n_pre} pre-intervention period(s) before "
            f"{intervention_time!r}; at least {MIN_PRE_PERIODS} are needed, choose a later "
            "intervention time or add earlier periods",
        )

    clean = frame.dropna(subset=[outcome_col])
    wide = clean.pivot(index=unit_col, columns=time_col, values=outcome_col).reindex(
        index=sorted(pd.unique(frame[unit_col])), columns=times
    )
    incomplete = wide.index[wide.isna().any(axis=1)]
    if len(incomplete):
        report = missing_cells(frame, unit_col, time_col, outcome_col)
        summary = "; ".join(
            f"{r.unit}: {r.missing} missing from {_show(r.first_missing)}"
            for r in report.head(5).itertuples()
        )
        treated_missing = [u for u in treated_units if u in set(incomplete)]
        if treated_missing:
            raise ArgumentError(
                "treated",
                f"treated: treated unit(s) {treated_missing} have missing cells ({summary}); "
                "fill them or choose another treated unit",
            )
        if not drop_incomplete:
            raise ArgumentError(
                "data",
                f"data: {len(incomplete)} unit(s) have missing cells in {outcome_col!r} "
                f"({summary}); fill them, or pass drop_incomplete=True (--drop-incomplete) "
                "to drop those donor units",
            )
        warnings.append(
            f"dropped {len(incomplete)} donor unit(s) with missing cells: "
            f"{', '.join(map(str, incomplete[:10]))}{' ...' if len(incomplete) > 10 else ''}"
        )
        wide = wide.drop(index=incomplete)

    units = [str(u) for u in wide.index]
    treated_idx = [units.index(u) for u in treated_units]
    donors = [i for i in range(len(units)) if i not in set(treated_idx)]
    if len(donors) < 2:
        raise ArgumentError(
            "treated",
            f"treated: only {len(donors)} donor unit(s) remain besides the treated unit(s); "
            "at least 2 untreated units are needed",
        )
    outcomes = wide.to_numpy(dtype=np.float64)
    predictors, names = _predictors(frame, unit_col, time_col, covariate_periods, units, start)
    calendar, calendar_names = calendar_features(times, n_pre)
    panel = Panel(
        units=units,
        times=[_plain(t) for t in times],
        outcomes=outcomes,
        treated=treated_idx,
        donors=donors,
        n_pre=n_pre,
        predictors=predictors,
        predictor_names=names,
        calendar=calendar,
        calendar_names=calendar_names,
    )
    return panel, warnings


def calendar_features(times: Sequence[Any], n_pre: int) -> tuple[FloatArray, list[str]]:
    """Seasonal one-hot features when the times are dates and the pre-period has two cycles.

    Daily data get day-of-week, weekly and monthly data month-of-year, quarterly data quarter.
    Numeric periods (years, week numbers) get none: there is no calendar to read.
    """
    if not times or not isinstance(times[0], pd.Timestamp) or len(times) < 2:
        return np.zeros((len(times), 0)), []
    index = pd.DatetimeIndex(list(times))
    seconds = np.diff(index.to_numpy()).astype("timedelta64[s]").astype(np.float64)
    step_days = float(np.median(seconds)) / 86_400
    if step_days <= 1.5:
        labels, period, name = index.day_of_week.to_numpy(), 7, "dow"
    elif step_days <= 45:
        labels, period, name = index.month.to_numpy() - 1, 12, "month"
        if step_days <= 10:
            period = 12 * 4  # weekly data: two years of history before months can be learned
    elif step_days <= 120:
        labels, period, name = index.quarter.to_numpy() - 1, 4, "quarter"
    else:
        return np.zeros((len(times), 0)), []
    if n_pre < 2 * period:
        return np.zeros((len(times), 0)), []
    levels = sorted(set(labels.tolist()))
    features = np.array([[1.0 if lab == lev else 0.0 for lev in levels] for lab in labels])
    return features, [f"{name}_{lev}" for lev in levels]


def _covariate_periods(covariates: CovariateSpec) -> dict[str, tuple[Any, Any] | None]:
    if covariates is None:
        return {}
    if isinstance(covariates, str):
        return {covariates: None}
    if isinstance(covariates, Mapping):
        periods: dict[str, tuple[Any, Any] | None] = {}
        for name, span in covariates.items():
            if span is not None and (not isinstance(span, Sequence) or len(span) != 2):
                raise ArgumentError(
                    "covariates",
                    f"covariates: the periods of {name!r} must be a (first, last) pair or None",
                )
            periods[str(name)] = None if span is None else (span[0], span[1])
        return periods
    return {str(c): None for c in covariates}


def _predictors(
    frame: pd.DataFrame,
    unit_col: str,
    time_col: str,
    periods: Mapping[str, tuple[Any, Any] | None],
    units: list[str],
    start: Any,
) -> tuple[FloatArray | None, list[str]]:
    if not periods:
        return None, []
    columns = []
    for name, span in periods.items():
        if span is None:
            mask = frame[time_col] < start
        else:
            first = _coerce_scalar_time(span[0], frame[time_col])
            last = _coerce_scalar_time(span[1], frame[time_col])
            mask = (frame[time_col] >= first) & (frame[time_col] <= last)
            if last >= start:
                raise ArgumentError(
                    "covariates",
                    f"covariates: the periods of {name!r} end at {span[1]!r}, not before the "
                    "intervention; average covariates over pre-intervention periods only",
                )
        means = frame[mask].groupby(unit_col)[name].mean().reindex(units)
        if means.isna().any():
            unit = means.index[means.isna()][0]
            raise ArgumentError(
                "covariates",
                f"covariates: {name!r} has no values for unit {unit!r} in its periods; "
                "fill it or drop the covariate",
            )
        columns.append(means.to_numpy(dtype=np.float64))
    return np.column_stack(columns), list(periods)


def _treated_units(treated: Any, units: pd.Series) -> list[str]:
    wanted = [treated] if isinstance(treated, str | int | float) else list(treated)
    if not wanted:
        raise ArgumentError("treated", "treated: give at least one treated unit")
    known = set(units.unique())
    names = [str(u) for u in wanted]
    unknown = [u for u in names if u not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:10])
        raise ArgumentError(
            "treated",
            f"treated: unit(s) {unknown} are not in the unit column; known units include {sample}",
        )
    if len(set(names)) != len(names):
        raise ArgumentError("treated", "treated: a unit is listed twice")
    return names


def _coerce_times(column: pd.Series, arg: str, name: str) -> pd.Series:
    if column.isna().any():
        raise ArgumentError(
            arg, f"{arg}: column {name!r} has empty values; every row needs a period"
        )
    if pd.api.types.is_bool_dtype(column):
        raise ArgumentError(arg, f"{arg}: column {name!r} holds booleans, not periods")
    if pd.api.types.is_numeric_dtype(column):
        return column
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column)
    try:
        return pd.to_datetime(column, format="ISO8601")
    except (ValueError, TypeError):
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().all():
            return numbers
        raise ArgumentError(
            arg,
            f"{arg}: column {name!r} must hold numbers or ISO dates (e.g. 2026-03-02); "
            f"found {column.iloc[0]!r}",
        ) from None


def _coerce_scalar_time(value: Any, column: pd.Series) -> Any:
    if pd.api.types.is_numeric_dtype(column):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ArgumentError(
                "intervention_time",
                f"intervention_time: {value!r} is not a number, but the time column is numeric",
            ) from None
        if math.isnan(number):
            raise ArgumentError("intervention_time", "intervention_time: must not be NaN")
        return number
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ArgumentError(
            "intervention_time",
            f"intervention_time: {value!r} is not a date; use an ISO date such as 2026-03-02",
        ) from None
    if pd.isna(stamp):
        raise ArgumentError("intervention_time", "intervention_time: must not be empty")
    tz = getattr(column.dt, "tz", None)
    if tz is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    return stamp


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _show(value: Any) -> str:
    return str(format_time(_plain(value)))


def format_time(value: Any) -> Any:
    """A period label for output: ints stay ints, dates become ISO strings."""
    if isinstance(value, pd.Timestamp):
        if value == value.normalize() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    return value

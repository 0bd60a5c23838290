"""What a CUPAC model learns from: per-unit rows read from Postgres in chunks.

A row per unit, *anchored* at a time: the unit's first exposure (in-experiment model, and the
rows a pre-experiment model predicts) or the cutoff before the experiment (the history a
pre-experiment model learns from). Per metric the row holds the events of the metric's stream
and the sum of their values in two windows around the anchor -- the **target** window
``[anchor, anchor + W)`` and the **pre-period** ``[anchor - P, anchor)`` -- and per feature the
latest ``unit_features`` value observed before the anchor. These are the analyzer's metric
semantics (docs/analyzer.md, "Metric definitions"): ``sum`` = s, ``count`` = n, ``any`` =
n > 0, ``mean`` = s / n (no value without events); a metric's stream is its outcome type, or
the experiment's non-shadow predictions.

All metrics of an experiment are read in **one** query (one join of the units with the union of
their streams, one ``GROUP BY`` unit), so the data is read and transformed once however many
metrics train; it is fetched through a server-side cursor in chunks of ``CHUNK_ROWS`` into
float arrays, so memory holds the arrays, never a million Python row objects.

Postgres runs the per-unit feature lookups of one query on one core (the ``LATERAL`` probe sits
above the parallel part of the plan: 1,000,000 units spent about two thirds of the read there),
so :func:`read_sliced` runs the query as ``slices`` concurrent queries over disjoint slices of
the units (by a hash of the unit id), each in its own connection, all on the **same snapshot**
(``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``, as ``pg_dump --jobs`` does): the rows are
exactly those one query would read, merged back into unit-id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from splitlab_trainer.definitions import MetricSpec

CHUNK_ROWS = 50_000
SLICE = "mod(hashtext({unit}) & 2147483647, :slice_count) = :slice_index"
"""The filter that puts a unit in one slice (``hashtext``: stable for a Postgres version, which
is all one read needs)."""


@dataclass
class UnitRows:
    """Per-unit columns (float64, NaN = no value) in unit-id order."""

    unit_ids: list[str]
    columns: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(self.unit_ids)


@dataclass
class Binder:
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


def stream_sql(metric: MetricSpec, bind: Binder, experiment_key: str) -> str:
    """``unit_id, occurred_at, v`` of one metric's events (all time; the join bounds them)."""
    if metric.source == "outcome":
        return (
            "SELECT unit_id, occurred_at, value AS v FROM outcomes "
            f"WHERE outcome_type = {bind(metric.outcome_type)}"
        )
    value = "latency_ms" if metric.source == "prediction_latency" else "(error IS NOT NULL)::int"
    return (
        f"SELECT unit_id, occurred_at, {value}::float8 AS v FROM predictions "
        f"WHERE experiment_key = {bind(experiment_key)} AND NOT shadow"
    )


def rows_sql(
    units: str,
    metrics: Sequence[MetricSpec],
    features: Sequence[str],
    bind: Binder,
    experiment_key: str,
    window_days: float | None = None,
) -> str:
    """The query: ``units`` is a relation ``u(unit_id, anchor)``. Columns ``unit_id``, per
    metric ``k``: ``yn{k}, ys{k}, pn{k}, ps{k}``, per feature ``j``: ``f{j}``. ``window_days``
    bounds an unbounded target window (history rows: the metric over the days after the
    cutoff)."""
    streams: list[str] = []
    keys: list[tuple[str, str | None]] = []
    stream_of: list[int] = []
    for metric in metrics:
        key = (metric.source, metric.outcome_type)
        if key not in keys:
            keys.append(key)
            src = stream_sql(metric, bind, experiment_key)
            streams.append(f"SELECT {len(streams)} AS src, s.* FROM ({src}) s")
        stream_of.append(keys.index(key))
    aggregates: list[str] = []
    lookback = 0.0
    horizon: float | None = 0.0
    for k, metric in enumerate(metrics):
        window = metric.attribution_window_seconds
        if window is None and window_days is not None:
            window = window_days * 86400.0
        pre = metric.pre_period_days * 86400.0
        lookback = max(lookback, pre)
        horizon = None if window is None or horizon is None else max(horizon, window)
        mine = f"e.src = {stream_of[k]}"
        post = "e.occurred_at >= u.anchor"
        if window is not None:
            post += f" AND e.occurred_at < u.anchor + make_interval(secs => {bind(window)})"
        before = (
            f"e.occurred_at < u.anchor AND "
            f"e.occurred_at >= u.anchor - make_interval(secs => {bind(pre)})"
        )
        aggregates += [
            f"count(e.v) FILTER (WHERE {mine} AND {post}) AS yn{k}",
            f"coalesce(sum(e.v) FILTER (WHERE {mine} AND {post}), 0) AS ys{k}",
            f"count(e.v) FILTER (WHERE {mine} AND {before}) AS pn{k}",
            f"coalesce(sum(e.v) FILTER (WHERE {mine} AND {before}), 0) AS ps{k}",
        ]
    join = (
        "e.unit_id = u.unit_id AND "
        f"e.occurred_at >= u.anchor - make_interval(secs => {bind(lookback)})"
    )
    if horizon is not None:
        join += f" AND e.occurred_at < u.anchor + make_interval(secs => {bind(horizon)})"
    events = " UNION ALL ".join(streams)
    per_unit = (
        f"SELECT u.unit_id, u.anchor, {', '.join(aggregates)} FROM ({units}) u "
        f"LEFT JOIN ({events}) e ON {join} GROUP BY u.unit_id, u.anchor"
    )
    columns = ["a.unit_id", *(f"a.{c}" for c in _metric_columns(len(metrics)))]
    if not features:
        return f'SELECT {", ".join(columns)} FROM ({per_unit}) a ORDER BY a.unit_id COLLATE "C"'
    # Every feature of a unit from ONE range scan of the (unit_id, name, observed_at) key: the
    # latest value per name before the anchor, pivoted (one probe per feature was 20 index
    # descents per unit with 20 features).
    names = bind(list(features))
    pivots = [f"max(l.value) FILTER (WHERE l.name = {bind(n)}) AS f{j}"
              for j, n in enumerate(features)]  # fmt: skip
    columns += [f"x.f{j}" for j in range(len(features))]
    latest = (
        "SELECT DISTINCT ON (f.name) f.name, f.value FROM unit_features f "
        f"WHERE f.unit_id = a.unit_id AND f.name = ANY(CAST({names} AS text[])) "
        "AND f.observed_at < a.anchor ORDER BY f.name, f.observed_at DESC"
    )
    return (
        f"SELECT {', '.join(columns)} FROM ({per_unit}) a "
        f"LEFT JOIN LATERAL (SELECT {', '.join(pivots)} FROM ({latest}) l) x ON true "
        'ORDER BY a.unit_id COLLATE "C"'
    )


def _metric_columns(count: int) -> list[str]:
    return [f"{p}{k}" for k in range(count) for p in ("yn", "ys", "pn", "ps")]


def experiment_units_sql(bind: Binder, experiment_key: str, variants: Sequence[str]) -> str:
    """The experiment's analyzed units anchored at their first exposure."""
    return (
        "SELECT unit_id, first_at AS anchor FROM experiment_units "
        f"WHERE experiment_key = {bind(experiment_key)} "
        f"AND variant = ANY(CAST({bind(list(variants))} AS text[]))"
    )


def history_units_sql(
    bind: Binder,
    metrics: Sequence[MetricSpec],
    features: Sequence[str],
    cutoff: datetime,
    experiment_key: str,
    window_days: float,
) -> str:
    """Units seen before the experiment, anchored at ``cutoff``: units with a feature observed
    before it or an event of a metric's stream in its pre-period or target window."""
    anchor = f"CAST({bind(cutoff)} AS timestamptz)"
    parts = []
    if features:
        parts.append(
            "SELECT unit_id FROM unit_features "
            f"WHERE name = ANY(CAST({bind(list(features))} AS text[])) AND observed_at < {anchor}"
        )
    for metric in metrics:
        if metric.source != "outcome":
            continue
        window = metric.attribution_window_seconds or window_days * 86400.0
        pre = metric.pre_period_days * 86400.0
        parts.append(
            "SELECT unit_id FROM outcomes "
            f"WHERE outcome_type = {bind(metric.outcome_type)} "
            f"AND occurred_at >= {anchor} - make_interval(secs => {bind(pre)}) "
            f"AND occurred_at < {anchor} + make_interval(secs => {bind(window)})"
        )
    if not parts:
        return f"SELECT NULL::text AS unit_id, {anchor} AS anchor WHERE false"
    return f"SELECT DISTINCT unit_id, {anchor} AS anchor FROM ({' UNION ALL '.join(parts)}) h"


def read_rows(connection: Connection, sql: str, params: dict[str, Any]) -> UnitRows:
    """Run ``sql`` through a server-side cursor, ``CHUNK_ROWS`` rows at a time."""
    result = connection.execution_options(stream_results=True, max_row_buffer=CHUNK_ROWS).execute(
        text(sql), params
    )
    names = list(result.keys())[1:]
    unit_ids: list[str] = []
    chunks: list[np.ndarray] = []
    for chunk in result.partitions(CHUNK_ROWS):
        unit_ids.extend(str(r[0]) for r in chunk)
        chunks.append(np.array([r[1:] for r in chunk], dtype=np.float64).reshape(len(chunk), -1))
    matrix = np.concatenate(chunks) if chunks else np.empty((0, len(names)))
    return UnitRows(unit_ids, {name: matrix[:, i] for i, name in enumerate(names)})


def sliced_units(units: str) -> str:
    """``units`` restricted to the slice that ``:slice_index`` of ``:slice_count`` names."""
    return f"SELECT * FROM ({units}) s WHERE {SLICE.format(unit='s.unit_id')}"


def read_sliced(engine: Engine, sql: str, params: dict[str, Any], slices: int) -> UnitRows:
    """Run ``sql`` (built on :func:`sliced_units`) once per slice, concurrently, on one
    snapshot, and merge the rows into unit-id order (Python's string order is the ``COLLATE
    "C"`` order of UTF-8 text)."""
    with engine.connect() as first:
        first.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        first.execute(text("SET LOCAL jit = off"))  # compiling costs seconds and saves none here
        snapshot = str(first.execute(text("SELECT pg_export_snapshot()")).scalar_one())

        def read(index: int) -> UnitRows:
            mine = {**params, "slice_index": index, "slice_count": slices}
            if index == 0:
                return read_rows(first, sql, mine)
            with engine.connect() as other:
                other.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                other.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                other.execute(text("SET LOCAL jit = off"))
                rows = read_rows(other, sql, mine)
                other.rollback()
                return rows

        with ThreadPoolExecutor(max_workers=slices) as pool:
            parts = list(pool.map(read, range(slices)))
        first.rollback()
    return merge_rows(parts)


def merge_rows(parts: Sequence[UnitRows]) -> UnitRows:
    """Disjoint row sets, each in unit-id order, as one in unit-id order."""
    unit_ids = [u for part in parts for u in part.unit_ids]
    order = np.argsort(np.array(unit_ids, dtype=str), kind="stable")
    names = list(parts[0].columns) if parts else []
    columns = {
        name: np.concatenate([part.columns[name] for part in parts])[order] for name in names
    }
    return UnitRows([unit_ids[i] for i in order], columns)

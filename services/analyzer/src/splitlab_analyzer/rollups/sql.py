"""SQL of per-unit slots computed from the events: results without rollups, rollup builds and
catch-ups. Text only; values are bind parameters.

One relation holds every event a slot may count: the outcomes and the experiment's
predictions, as a ``UNION ALL`` whose branches have no ``WHERE`` (the filters sit in the join
condition and fold to constants per branch), so Postgres flattens it and can drive index scans
into both tables for a few units (ingestion) or hash-join all of them (results, builds).
Window conditions become boolean columns computed once per joined row (``OFFSET 0`` keeps the
planner from copying them back into every aggregate's ``FILTER``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from splitlab.contracts.values import MAX_ABS_VALUE
from splitlab_analyzer.rollups.plan import RollupPlan, Slot


@dataclass
class Binder:
    """Collects bind parameters; ``style`` is ``named`` (SQLAlchemy ``text``) or ``pyformat``
    (a DBAPI cursor). Equal values bound under the same prefix share one parameter."""

    style: str = "named"
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, prefix: str, value: Any) -> str:
        name = None
        for bound, existing in self.params.items():
            if bound.rstrip("0123456789") == prefix and existing == value:
                name = bound
                break
        if name is None:
            name = f"{prefix}{sum(1 for b in self.params if b.rstrip('0123456789') == prefix)}"
            self.params[name] = value
        return f":{name}" if self.style == "named" else f"%({name})s"


Bind = Callable[[str, Any], str]


def slot_condition(slot: Slot, bind: Bind, e: str = "e", first: str = "u.first_at") -> str:
    """Whether event ``e`` (a row of :func:`events_sql`) counts in ``slot`` for a unit whose
    first exposure is ``first``."""
    if slot.source == "outcome":
        stream = f"{e}.src = 0 AND {e}.outcome_type = {bind('ot', slot.outcome_type)}"
    else:
        stream = f"{e}.src = 1"
    t = f"{e}.occurred_at"
    if slot.kind == "pre":
        seconds = bind("pre", slot.seconds)
        window = f"{t} < {first} AND {t} >= {first} - make_interval(secs => {seconds})"
    elif slot.seconds is None:
        window = f"{t} >= {first}"
    else:
        seconds = bind("win", slot.seconds)
        window = f"{t} >= {first} AND {t} < {first} + make_interval(secs => {seconds})"
    return f"{stream} AND {window}"


def slot_value(slot: Slot) -> str:
    """The column of the joined rows a slot sums."""
    if slot.source == "outcome":
        return "value"
    return "latency_ms" if slot.source == "prediction_latency" else "err"


def events_sql(
    plan: RollupPlan, key: str, *, outcomes: str = "outcomes", predictions: str = "predictions"
) -> str:
    """The event relation of a plan (columns ``unit_id, occurred_at, src, outcome_type, value,
    latency_ms, err, experiment_key, shadow``); ``key`` is the bound experiment key. Filter it
    with :func:`events_condition` in the join."""
    branches = []
    if plan.outcome_types:
        branches.append(
            "SELECT unit_id, occurred_at, 0 AS src, outcome_type, value, "
            "NULL::float8 AS latency_ms, NULL::float8 AS err, "
            f"CAST({key} AS text) AS experiment_key, false AS shadow FROM {outcomes}"
        )
    if plan.uses_predictions:
        branches.append(
            "SELECT unit_id, occurred_at, 1 AS src, NULL::text AS outcome_type, "
            "NULL::float8 AS value, latency_ms, (error IS NOT NULL)::int::float8 AS err, "
            f"experiment_key, shadow FROM {predictions}"
        )
    return " UNION ALL ".join(branches)


def events_condition(plan: RollupPlan, bind: Bind, key: str, e: str = "e", u: str = "u") -> str:
    """Join condition of a unit ``u`` of experiment ``key`` (bound) with its events ``e``: its
    outcomes of the plan's types, its predictions in the experiment (never shadow ones), and
    only values within :data:`~splitlab.contracts.values.MAX_ABS_VALUE` (rows stored before the
    edges held that limit are left out, so one 1e308 cannot overflow a sum)."""
    parts = [f"{e}.unit_id = {u}.unit_id", f"{e}.experiment_key = {key}"]
    if plan.uses_predictions:
        parts.append(f"NOT {e}.shadow")
    if plan.outcome_types:
        types = f"{e}.outcome_type = ANY(CAST({bind('ots', plan.outcome_types)} AS text[]))"
        parts.append(f"({e}.src = 1 OR {types})" if plan.uses_predictions else types)
    parts.append(f"abs(coalesce({e}.value, {e}.latency_ms)) <= {bind('vmax', MAX_ABS_VALUE)}")
    return " AND ".join(parts)


def slot_aggregates(plan: RollupPlan, x: str = "x") -> list[str]:
    """``n{i}`` and ``s{i}`` of every slot over flagged rows ``x`` (``k{i}``)."""
    out = []
    for i, slot in enumerate(plan.slots):
        out.append(f"count(*) FILTER (WHERE {x}.k{i}) AS n{i}")
        out.append(f"coalesce(sum({x}.{slot_value(slot)}) FILTER (WHERE {x}.k{i}), 0) AS s{i}")
    return out


def flagged_rows(plan: RollupPlan, bind: Bind, units: str, events: str, key: str) -> str:
    """Units ``u`` (a relation with ``experiment_key, unit_id, variant, first_at,
    allocation_period``) joined with
    their events, one boolean ``k{i}`` per slot."""
    flags = ", ".join(f"{slot_condition(s, bind)} AS k{i}" for i, s in enumerate(plan.slots))
    return (
        "SELECT u.unit_id, u.variant, u.first_at, u.allocation_period, e.value, e.latency_ms, "
        "e.err, "
        f"{flags} FROM {units} LEFT JOIN ({events}) e ON {events_condition(plan, bind, key)} "
        f"WHERE u.experiment_key = {key} OFFSET 0"
    )


def unit_slots_sql(
    plan: RollupPlan, bind: Bind, key: str, units: str = "experiment_units u"
) -> str:
    """Per unit of the experiment: ``unit_id, variant, first_at, allocation_period, n0, s0,
    ...`` computed from the events. ``units`` may restrict the units with a join (ingestion:
    the moved units)."""
    rows = flagged_rows(plan, bind, units, events_sql(plan, key), key)
    return (
        f"SELECT x.unit_id, x.variant, x.first_at, x.allocation_period, "
        f"{', '.join(slot_aggregates(plan))} "
        f"FROM ({rows}) x GROUP BY x.unit_id, x.variant, x.first_at, x.allocation_period"
    )


def slot_columns(plan: RollupPlan) -> list[str]:
    return [c for i in range(len(plan.slots)) for c in (f"n{i}", f"s{i}")]


def store_sql(plan: RollupPlan, bind: Bind, key: str, units: str = "experiment_units u") -> str:
    """Insert (or replace) the rollups of the units of ``units`` computed from the events, with
    each unit's first-exposure attributes (what results by segment group by)."""
    columns = slot_columns(plan)
    replace = ", ".join(
        f"{c} = excluded.{c}"
        for c in ["variant", "first_at", "allocation_period", "attributes", *columns]
    )
    return (
        f"INSERT INTO unit_rollups (experiment_key, unit_id, variant, first_at, "
        f"allocation_period, attributes, {', '.join(columns)}) "
        f"SELECT {key}, a.unit_id, a.variant, a.first_at, a.allocation_period, eu.attributes, "
        f"{', '.join(f'a.{c}' for c in columns)} FROM ({unit_slots_sql(plan, bind, key, units)}) a "
        f"JOIN experiment_units eu ON eu.experiment_key = {key} AND eu.unit_id = a.unit_id "
        f"ON CONFLICT (experiment_key, unit_id) DO UPDATE SET {replace}"
    )

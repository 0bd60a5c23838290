"""Acceptance of results by segment (issue 20): the analyzer's results for a segmented
experiment equal ``splitlab.analyze(..., segment=...)`` on the same units to 1e-9, from the
events and from the stored rollups; a unit's segment is the attribute of its FIRST exposure;
a segment the units do not carry is a 422 naming ``segment`` and the attributes that exist.

Events go through the consumer's sink (what ingestion writes, first exposures included) into
the real Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

import splitlab
from splitlab.contracts.events import ExposureEvent
from splitlab_analyzer.consumer.rows import RawRecord, build_batch
from splitlab_analyzer.consumer.sink import PostgresSink
from tests.integration.analyzer.conftest import ADMIN, define_metrics, insert_experiment
from tests.integration.analyzer.simulation import Simulation, experiment_row, simulate
from tests.integration.analyzer.test_results_pipeline import (
    COVARIATES,
    RATIOS,
    WEIGHTS,
    assert_same,
)

pytestmark = pytest.mark.integration

COUNTRIES = np.array(["BR", "DE", "FR", "US"], dtype=object)


def with_attributes(sim: Simulation, seed: int) -> tuple[list[Any], pd.DataFrame]:
    """Every unit's first exposure carries its country and tenure (5% without a country, 2%
    with an empty one, 3% without a tenure); a later exposure of the same unit carries other
    values, which must not count."""
    rng = np.random.default_rng(seed)
    units = sim.units.copy()
    n = len(units)
    country = rng.choice(COUNTRIES, n, p=[0.15, 0.2, 0.25, 0.4])
    country[rng.uniform(size=n) < 0.05] = None
    country[rng.uniform(size=n) < 0.02] = ""  # sent empty: missing, as in a file
    tenure = np.round(rng.uniform(0, 500, n), 1)
    tenure[rng.uniform(size=n) < 0.03] = np.nan
    units["country"], units["tenure_days"] = country, tenure
    by_unit = {u: i for i, u in enumerate(units["unit_id"])}
    first: dict[str, Any] = {}
    for e in sim.events:
        if e.event_type == "exposure" and (
            e.unit_id not in first or e.occurred_at < first[e.unit_id]
        ):
            first[e.unit_id] = e.occurred_at
    events: list[Any] = []
    for e in sim.events:
        if isinstance(e, ExposureEvent):
            i = by_unit[e.unit_id]
            attributes: dict[str, Any] = {"device": "mobile"}
            if e.occurred_at == first[e.unit_id]:
                if country[i] is not None:
                    attributes["country"] = str(country[i])
                if np.isfinite(tenure[i]):
                    attributes["tenure_days"] = float(tenure[i])
            else:
                attributes.update(country="XX", tenure_days=9999.0)
            e = e.model_copy(update={"attributes": attributes})
        events.append(e)
    return events, units


def write(engine: Engine, events: list[Any]) -> None:
    sink = PostgresSink(engine)
    for start in range(0, len(events), 5000):
        chunk = events[start : start + 5000]
        records = [RawRecord(e.topic, 0, i, e.key(), e.to_bytes()) for i, e in enumerate(chunk)]
        batch = build_batch(records, {})
        assert not batch.dead_letters
        sink.write(batch.rows)


def reference(units: pd.DataFrame, metric: str, method: str, segment: str) -> dict[str, Any]:
    options: dict[str, Any] = {"method": method, "weights": WEIGHTS, "segment": segment}
    if metric in RATIOS:
        return splitlab.analyze(units, metrics=[], ratio_metrics=RATIOS, **options).to_dict()
    return splitlab.analyze(
        units,
        metrics=[metric],
        covariates=COVARIATES[metric],
        lower_is_better=["latency"] if metric == "latency" else [],
        **options,
    ).to_dict()


def assert_segments_equal(units: pd.DataFrame, body: dict[str, Any], method: str,
                          segment: str, metrics: list[str]) -> None:  # fmt: skip
    got = body["segments"]
    for metric in metrics:
        expected = reference(units, metric, method, segment)
        assert_same(expected["metrics"][metric], body["metrics"][metric], metric)
        want = expected["segments"]
        assert list(want["segments"]) == list(got["segments"])
        for label, seg in want["segments"].items():
            mine = got["segments"][label]
            assert seg["units"] == mine["units"], label
            assert_same(seg["srm_p_value"], mine["srm_p_value"], f"{label}.srm")
            assert_same(seg["metrics"][metric], mine["metrics"][metric], f"{label}.{metric}")
        assert_same(want["heterogeneity"][metric], got["heterogeneity"][metric], metric)
        for field in ("attribute", "edges", "correction", "min_units"):
            assert want[field] == got[field], field


def test_segmented_results_equal_splitlab_analyze_from_events_and_rollups(
    analyzer: TestClient, engine: Engine
) -> None:
    key = f"seg-{uuid.uuid4().hex[:8]}"
    sim = simulate(key, n=1500, seed=21, revenue_effect=8.0)
    events, units = with_attributes(sim, seed=21)
    insert_experiment(engine, experiment_row(key))
    define_metrics(analyzer)
    for start in range(0, len(sim.features), 5000):
        response = analyzer.post(
            "/unit-features", json={"features": sim.features[start : start + 5000]}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
    write(engine, events)
    with engine.connect() as c:
        stored = c.execute(
            text("SELECT count(*) FROM experiment_units WHERE experiment_key = :k "
                 "AND attributes ->> 'country' = 'XX'"), {"k": key}
        ).scalar_one()  # fmt: skip
    assert stored == 0  # the first exposure's attributes, never a later one's

    everything = [*COVARIATES, *RATIOS]
    by_country = analyzer.get(
        f"/experiments/{key}/results", params={"method": "none", "segment": "country"}
    )
    assert by_country.status_code == 200, by_country.text
    body = by_country.json()
    assert body["timings"]["per_unit"] == "events"
    assert list(body["segments"]["segments"]) == ["BR", "DE", "FR", "US", "(missing)"]
    assert_segments_equal(units, body, "none", "country", everything)
    # The true effect is on revenue in t1 only; clicks have none.
    assert (
        body["segments"]["segments"]["US"]["metrics"]["revenue"]["comparisons"]["t1"]["ci_lower"]
        > 0
    )

    sequential = analyzer.get(
        f"/experiments/{key}/results",
        params={"method": "none", "segment": "country", "sequential": "true"},
    ).json()
    p_fixed = body["segments"]["segments"]["US"]["metrics"]["revenue"]["comparisons"]["t1"]
    p_seq = sequential["segments"]["segments"]["US"]["metrics"]["revenue"]["comparisons"]["t1"]
    assert p_seq["p_value"] > p_fixed["p_value"]  # always-valid p-values are larger

    # The refresh stores the rollups; the segmented answer from them is the same.
    assert analyzer.post(f"/experiments/{key}/refresh", headers=ADMIN).status_code == 200
    for method in ("regression", "cuped"):
        tenure = analyzer.get(
            f"/experiments/{key}/results",
            params={"method": method, "segment": "tenure_days:90,180,365"},
        )
        assert tenure.status_code == 200, tenure.text
        got = tenure.json()
        assert got["timings"]["per_unit"] == "rollups"
        assert list(got["segments"]["segments"]) == [
            "<90", "[90, 180)", "[180, 365)", ">=365", "(missing)",
        ]  # fmt: skip
        assert_segments_equal(units, got, method, "tenure_days:90,180,365",
                              ["revenue", "clicks", "order_value"])  # fmt: skip
    bh = analyzer.get(
        f"/experiments/{key}/results",
        params={"method": "none", "segment": "country", "segment_correction": "benjamini-hochberg"},
    )
    assert bh.status_code == 200, bh.text
    assert bh.json()["segments"]["correction"] == "benjamini-hochberg"
    want = splitlab.analyze(units, metrics=["revenue"], covariates=COVARIATES["revenue"],
                            method="none", weights=WEIGHTS, segment="country",
                            segment_correction="benjamini-hochberg").to_dict()  # fmt: skip
    for label, seg in want["segments"]["segments"].items():
        assert_same(seg["metrics"]["revenue"], bh.json()["segments"]["segments"][label]["metrics"]
                    ["revenue"], f"bh.{label}")  # fmt: skip
    plain = analyzer.get(f"/experiments/{key}/results", params={"method": "none"}).json()
    assert "segments" not in plain
    assert_same(body["metrics"]["revenue"], plain["metrics"]["revenue"], "unsegmented")


def test_exposures_without_attributes_answer_how_to_record_the_segment(
    analyzer: TestClient, engine: Engine
) -> None:
    """An owner sends country to /assign, but an experiment whose targeting reads nothing
    records no attribute on its exposures: the 422 must say so and name the fix (it said only
    "the exposures carry no attributes", though the owner had sent them)."""
    key = f"seg-{uuid.uuid4().hex[:8]}"
    sim = simulate(key, n=200, seed=4)
    insert_experiment(engine, experiment_row(key))
    define_metrics(analyzer)
    write(engine, list(sim.events))
    answer = analyzer.get(f"/experiments/{key}/results", params={"segment": "country"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "segment"
    assert "attributes that exist: none" in error["message"]
    assert "segment_attributes" in error["message"]
    assert f"splitlab experiments update {key} --segment-attribute country" in error["message"]
    assert "$nin" not in error["message"]


def test_an_attribute_with_a_value_per_unit_is_a_422_naming_segment(
    analyzer: TestClient, engine: Engine
) -> None:
    """GET results?segment=<an id> (open to any reader by default) ran one analysis per unit:
    2,200 segments answered 200 with 2.9 MB in 3.0 s. Past MAX_SEGMENTS it is a 422."""
    from splitlab.core.analysis.segments import MAX_SEGMENTS

    key = f"seg-{uuid.uuid4().hex[:8]}"
    sim = simulate(key, n=MAX_SEGMENTS + 100, seed=5)
    events = [
        e.model_copy(update={"attributes": {"uid": e.unit_id, "one": "x"}})
        if isinstance(e, ExposureEvent)
        else e
        for e in sim.events
    ]
    insert_experiment(engine, experiment_row(key))
    define_metrics(analyzer)
    write(engine, events)
    answer = analyzer.get(f"/experiments/{key}/results", params={"segment": "uid"})
    assert answer.status_code == 422, answer.text[:300]
    error = answer.json()["error"]
    assert error["field"] == "segment"
    assert f"more than the {MAX_SEGMENTS} segments" in error["message"]
    assert "bucket a number with edges" in error["message"]
    one = analyzer.get(f"/experiments/{key}/results", params={"segment": "one"})
    assert one.status_code == 200, one.text[:300]
    assert list(one.json()["segments"]["segments"]) == ["x"]


def test_a_segment_the_units_do_not_carry_is_a_422_naming_segment(
    analyzer: TestClient, engine: Engine
) -> None:
    key = f"seg-{uuid.uuid4().hex[:8]}"
    sim = simulate(key, n=200, seed=3)
    events, _ = with_attributes(sim, seed=3)
    insert_experiment(engine, experiment_row(key))
    define_metrics(analyzer)
    write(engine, events)
    unknown = analyzer.get(f"/experiments/{key}/results", params={"segment": "plan"})
    assert unknown.status_code == 422, unknown.text
    error = unknown.json()["error"]
    assert error["field"] == "segment"
    assert "'plan'" in error["message"]
    assert "attributes that exist: country, device, tenure_days" in error["message"]
    wrong = analyzer.get(
        f"/experiments/{key}/results", params={"segment": "country", "segment_correction": "x"}
    )
    assert wrong.status_code == 422, wrong.text
    for bad in ("tenure_days:9,3", "tenure_days:a", ":1", "", "  "):
        malformed = analyzer.get(f"/experiments/{key}/results", params={"segment": bad})
        assert malformed.status_code == 422, bad
        assert malformed.json()["error"]["field"] == "segment"
    # Every unit has a device: one segment, the whole experiment.
    device = analyzer.get(f"/experiments/{key}/results", params={"segment": "device"})
    assert device.status_code == 200, device.text
    assert list(device.json()["segments"]["segments"]) == ["mobile"]

"""Holdout impact through the analyzer and real Postgres (issue 20).

Outcomes and predictions (a unit seen only by the prediction it was served counts, with 0) of
800 units over five days (dated in 2001, so no other test's outcomes fall in the
window) go through the consumer's sink; the units the holdout hash holds out (share 0.3) get
0.5 less per purchase. The service's answer for sum, count, any and mean metrics equals
``holdout_impact`` on the same events (per-unit-day sums made here with pandas) to 1e-9; the
HTTP route answers its schema, and bad input is an error naming its field.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from splitlab.contracts.events import OutcomeEvent, PredictionEvent
from splitlab.core.analysis.holdout import holdout_impact
from splitlab.core.assignment.decision import HoldoutConfig, in_holdout
from splitlab.platform.settings import Settings
from splitlab.reports.numbers import number, p_value
from splitlab.web.state import app_state
from splitlab_analyzer.app import create_app
from splitlab_analyzer.deps import AnalyzerState
from splitlab_analyzer.results.holdout import HoldoutService
from splitlab_analyzer.results.repository.holdout import HoldoutRepository
from tests.integration.analyzer.conftest import ADMIN, write
from tests.integration.analyzer.test_console import log_in

pytestmark = pytest.mark.integration

START = datetime(2001, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=5)
SHARE = 0.3


def prediction(unit: str, at: datetime, shadow: bool = False) -> PredictionEvent:
    return PredictionEvent(unit_id=unit, occurred_at=at, experiment_key="holdout-impact",
                           variant="control", bucket_version=1, request_id=uuid.uuid4().hex,
                           model_name="m", model_version="1", shadow=shadow,
                           latency_ms=1.0)  # fmt: skip


def events(
    tag: str, seed: int = 11, start: datetime = START
) -> tuple[list[OutcomeEvent], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    holdout = HoldoutConfig(share=SHARE, seed=f"holdout-{tag}")
    out, rows = [], []
    for u in range(800):
        unit = f"{tag}-{u}"
        held = in_holdout(unit, holdout)
        for d in range(5):
            draw = rng.random()
            if draw < 0.2:
                continue
            at = start + timedelta(days=d, hours=float(rng.uniform(0, 23)))
            if draw < 0.4:  # served a prediction, no outcome: seen, with 0 of the metric
                out.append(prediction(unit, at))
                rows.append((unit, at.date(), held, 0.0, 0))
                continue
            out.append(OutcomeEvent(unit_id=unit, outcome_type=f"visit-{tag}", value=1.0,
                                    occurred_at=at))  # fmt: skip
            rows.append((unit, at.date(), held, 0.0, 0))
            for _ in range(int(rng.poisson(1.0))):
                value = float(rng.normal(2.0 - 0.5 * held, 1.0))
                out.append(OutcomeEvent(unit_id=unit, outcome_type=f"buy-{tag}", value=value,
                                        occurred_at=at))  # fmt: skip
                rows.append((unit, at.date(), held, value, 1))
    # A shadow model's prediction is not the unit being served: it adds no one.
    out.append(prediction(f"{tag}-shadow-only", start + timedelta(hours=1), shadow=True))
    frame = pd.DataFrame(rows, columns=["unit", "day", "holdout", "value", "events"])
    per_day = frame.groupby(["unit", "day"], as_index=False).agg(
        holdout=("holdout", "first"), value=("value", "sum"), events=("events", "sum")
    )
    return out, per_day


@pytest.fixture
def loaded(analyzer_settings: Settings, redis_client: Any, engine: Engine) -> Any:
    tag = uuid.uuid4().hex[:8]
    outcomes, per_day = events(tag)
    write(engine, outcomes)
    settings = analyzer_settings.model_copy(
        update={"holdout_share": SHARE, "holdout_seed": f"holdout-{tag}"}
    )
    with TestClient(create_app(settings)) as client:
        for aggregation in ("sum", "count", "any", "mean"):
            body = {"name": f"h{aggregation}_{tag}", "source": "outcome",
                    "outcome_type": f"buy-{tag}", "aggregation": aggregation}  # fmt: skip
            assert client.post("/metrics", json=body, headers=ADMIN).status_code == 201
        yield tag, per_day, client


def test_service_equals_the_library_on_the_same_events(loaded: Any, engine: Engine) -> None:
    tag, per_day, client = loaded
    state = app_state(client.app, AnalyzerState)
    service = HoldoutService(
        HoldoutRepository(engine), state.metrics, HoldoutConfig(SHARE, f"holdout-{tag}")
    )
    for aggregation, kind in (("sum", "sum"), ("count", "sum"), ("any", "any"), ("mean", "mean")):
        got = service.impact(f"h{aggregation}_{tag}", days=5, now=NOW)
        values = per_day.events if aggregation in ("count", "any") else per_day.value
        expected = holdout_impact(
            per_day.unit.to_numpy(), per_day.day.to_numpy(), values.to_numpy(dtype=float),
            per_day.holdout.to_numpy(), count=per_day.events.to_numpy(dtype=float),
            aggregation=kind,  # type: ignore[arg-type]
            metric=f"h{aggregation}_{tag}",
        ).to_dict()  # fmt: skip
        assert len(got["days"]) == 5
        for g, e in zip(got["days"], expected["days"], strict=True):
            assert g.keys() == e.keys()
            for field, value in e.items():
                if isinstance(value, float):
                    assert math.isclose(g[field], value, rel_tol=1e-9, abs_tol=1e-12), field
                else:
                    assert g[field] == value, (aggregation, field)
    latest = service.impact(f"hsum_{tag}", days=5, now=NOW)["latest"]
    assert latest["ci_lower"] > 0  # the rest gets 0.5 more per purchase
    assert latest["n_holdout"] + latest["n_exposed"] == per_day.unit.nunique()


def test_route_answers_its_schema_and_names_bad_fields(
    loaded: Any, analyzer_settings: Settings, redis_client: Any
) -> None:
    tag, _, client = loaded
    ok = client.get("/holdout/impact", params={"metric": f"hsum_{tag}", "days": 3})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["control"] == "holdout"
    assert body["holdout_share"] == SHARE
    assert set(body) >= {"days", "latest", "since", "until", "aggregation", "sequential"}
    unknown = client.get("/holdout/impact", params={"metric": f"nope_{tag}"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "metric"
    days = client.get("/holdout/impact", params={"metric": f"hsum_{tag}", "days": 0})
    assert days.status_code == 422
    assert "days" in days.text
    ratio = {"name": f"hratio_{tag}", "numerator": f"hsum_{tag}", "denominator": f"hcount_{tag}"}
    assert client.post("/metrics", json=ratio, headers=ADMIN).status_code == 201
    refused = client.get("/holdout/impact", params={"metric": f"hratio_{tag}"})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "metric"
    with TestClient(create_app(analyzer_settings)) as without:  # SPLITLAB_HOLDOUT_SHARE = 0
        none = without.get("/holdout/impact", params={"metric": f"hsum_{tag}"})
    assert none.status_code == 409
    assert none.json()["error"]["field"] == "holdout_share"


def test_a_parameter_given_twice_is_refused_naming_it(
    loaded: Any, analyzer_settings: Settings, redis_client: Any
) -> None:
    # ?metric=a&metric=b once answered 200 for b alone: the caller asked for two metrics and got
    # one without a word.
    tag, _, client = loaded
    twice = client.get(
        "/holdout/impact", params=[("metric", f"hsum_{tag}"), ("metric", f"hcount_{tag}")]
    )
    assert twice.status_code == 422, twice.text
    assert twice.json()["error"]["field"] == "metric"
    assert "given 2 times" in twice.json()["error"]["message"]
    days = client.get(
        "/holdout/impact", params=[("metric", f"hsum_{tag}"), ("days", "3"), ("days", "5")]
    )
    assert days.status_code == 422, days.text
    assert days.json()["error"]["field"] == "days"
    once = client.get("/holdout/impact", params={"metric": f"hsum_{tag}", "days": 3})
    assert once.status_code == 200, once.text


def test_the_console_shows_the_holdout_impact_of_a_chosen_metric(
    analyzer_settings: Settings, redis_client: Any, engine: Engine
) -> None:
    # The holdout impact was reachable from the API, the CLI and the HTML report, not from the
    # console an owner reads.
    tag = uuid.uuid4().hex[:8]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    write(engine, events(tag, start=today - timedelta(days=4))[0])
    settings = analyzer_settings.model_copy(
        update={"holdout_share": SHARE, "holdout_seed": f"holdout-{tag}"}
    )
    with TestClient(create_app(settings)) as client:
        for body in (
            {"name": f"hmean_{tag}", "source": "outcome", "outcome_type": f"buy-{tag}",
             "aggregation": "mean"},
            {"name": f"hratio_{tag}", "numerator": f"hmean_{tag}", "denominator": f"hmean_{tag}"},
        ):  # fmt: skip
            assert client.post("/metrics", json=body, headers=ADMIN).status_code == 201
        log_in(client)
        params = {"metric": f"hmean_{tag}", "days": 10, "sequential": "true"}
        page = client.get("/ui/holdout", params=params)
        assert page.status_code == 200, page.text
        body = client.get("/holdout/impact", params=params).json()
        unknown = client.get("/ui/holdout", params={"metric": f"nope_{tag}"}).text
        days = client.get("/ui/holdout", params={"metric": f"hmean_{tag}", "days": 0}).text
    section = page.text.split('id="holdout-impact"', 1)[1]
    assert "always-valid intervals" in section
    assert section.count("<svg") == 1
    assert len(body["days"]) >= 4
    for day in body["days"]:
        row = section.split(f"<tr><td>{day['day']}</td>", 1)[1].split("</tr>", 1)[0]
        assert f"<td>{number(day['effect'])}</td>" in row
        assert f"<td>{p_value(day['p_value'])}</td>" in row
    assert f'<option value="hmean_{tag}" selected>' in page.text
    assert f'<option value="hratio_{tag}"' not in page.text  # only plain outcome metrics
    assert f"no metric named &#39;nope_{tag}&#39;" in unknown.split('id="holdout-error"', 1)[1]
    assert "days: must be between 1 and 366; got 0" in days
    with TestClient(create_app(analyzer_settings)) as without:  # SPLITLAB_HOLDOUT_SHARE = 0
        log_in(without)
        none = without.get("/ui/holdout").text
    assert "no global holdout is configured" in none.split('id="holdout-error"', 1)[1]

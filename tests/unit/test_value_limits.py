"""One limit for stored values (issue 13, item 2): the router's outcomes, the analyzer's unit
features and the event contract all refuse a value beyond ``MAX_ABS_VALUE`` naming the field
and the limit, so no edge lets in a 1e308 that overflows the analyzer's sums."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from splitlab.contracts.events import InvalidEventError, OutcomeEvent, parse_event
from splitlab.contracts.values import MAX_ABS_VALUE, VALUE_RULE, check_value
from splitlab_analyzer.consumer import metrics as consumer_metrics
from splitlab_analyzer.schemas import FeatureValue
from splitlab_router.schemas import OutcomeIn

TOO_BIG = (1e308, -1e308, MAX_ABS_VALUE * 1.000001, float("inf"), float("nan"))


@pytest.mark.parametrize("value", [0.0, -MAX_ABS_VALUE, MAX_ABS_VALUE, 12.5])
def test_values_within_the_limit_pass(value: float) -> None:
    assert check_value(value) == value
    assert OutcomeIn(unit_id="u", outcome_type="purchase", value=value).value == value


@pytest.mark.parametrize("value", TOO_BIG)
def test_the_router_refuses_an_outcome_beyond_the_limit(value: float) -> None:
    with pytest.raises(ValidationError) as caught:
        OutcomeIn(unit_id="u", outcome_type="purchase", value=value)
    (error,) = caught.value.errors()
    assert error["loc"] == ("value",)
    assert VALUE_RULE in error["msg"]
    assert "1e+12" in error["msg"]


@pytest.mark.parametrize("value", TOO_BIG)
def test_the_analyzer_refuses_a_unit_feature_beyond_the_limit(value: float) -> None:
    with pytest.raises(ValidationError) as caught:
        FeatureValue(unit_id="u", name="spend", value=value, observed_at="2026-01-01T00:00:00Z")
    assert caught.value.errors()[0]["loc"] == ("value",)


def test_the_consumer_dead_letters_an_outcome_event_beyond_the_limit() -> None:
    ok = OutcomeEvent(unit_id="u", outcome_type="purchase", value=5.0)
    payload = json.loads(ok.to_bytes())
    payload.update(value=1e308, event_id=str(uuid.uuid4()))
    with pytest.raises(InvalidEventError) as caught:
        parse_event(json.dumps(payload))
    assert caught.value.reason.startswith("outcome.value: Value error, must be a finite number")
    assert parse_event(ok.to_bytes()) == ok


def test_the_consumer_creates_its_topic_counters_at_zero() -> None:
    from prometheus_client import REGISTRY

    topic = f"splitlab.test.{uuid.uuid4().hex[:8]}"
    name = "splitlab_analyzer_dead_letters_total"
    assert REGISTRY.get_sample_value(name, {"topic": topic}) is None
    consumer_metrics.initialise([topic])
    assert REGISTRY.get_sample_value(name, {"topic": topic}) == 0.0


def test_every_publisher_creates_its_lost_events_counter_at_zero() -> None:
    from prometheus_client import REGISTRY

    from splitlab.platform.messaging.publisher import EventPublisher
    from splitlab.platform.settings import Settings

    service = f"svc-{uuid.uuid4().hex[:8]}"
    name = "splitlab_events_lost_total"
    assert REGISTRY.get_sample_value(name, {"service": service}) is None
    EventPublisher(Settings(environment="test"), service=service)
    assert REGISTRY.get_sample_value(name, {"service": service}) == 0.0

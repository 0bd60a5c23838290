"""``/outcomes`` input rules without a server: strict value types, times UTC can hold, and the
sanity window around now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from splitlab.contracts.events import OutcomeEvent
from splitlab.platform.errors import InvalidInputError
from splitlab_analyzer.schemas import FeatureValue
from splitlab_router.outcomes import OutcomeService
from splitlab_router.schemas import OutcomeBatch, OutcomeIn
from tests.unit.assigning.fakes import CollectingPublisher

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def outcome(**fields: Any) -> dict[str, Any]:
    return {"unit_id": "u", "outcome_type": "revenue", "value": 1.5, **fields}


@pytest.mark.parametrize("value", [True, "1.5", "1", None, [1.0]])
def test_value_must_be_a_json_number(value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        OutcomeIn.model_validate(outcome(value=value))
    assert refused.value.errors()[0]["loc"] == ("value",)


@pytest.mark.parametrize("value", [True, "1.5"])
def test_a_feature_value_must_be_a_json_number(value: Any) -> None:
    body = {"unit_id": "u", "name": "spend", "value": value, "observed_at": "2026-01-01T00:00:00Z"}
    with pytest.raises(ValidationError) as refused:
        FeatureValue.model_validate(body)
    assert refused.value.errors()[0]["loc"] == ("value",)


def test_an_integer_value_is_a_number() -> None:
    assert OutcomeIn.model_validate(outcome(value=3)).value == 3.0


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_times_utc_cannot_hold_are_a_validation_error_naming_the_field(at: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OutcomeIn.model_validate(outcome(occurred_at=at))
    error = refused.value.errors()[0]
    assert error["loc"] == ("occurred_at",)
    assert "years 1 to 9999" in error["msg"]
    with pytest.raises(ValidationError) as in_batch:
        OutcomeBatch.model_validate({"outcomes": [outcome(), outcome(occurred_at=at)]})
    assert in_batch.value.errors()[0]["loc"] == ("outcomes", 1, "occurred_at")
    with pytest.raises(ValidationError) as feature:
        FeatureValue.model_validate(
            {"unit_id": "u", "name": "spend", "value": 1.0, "observed_at": at}
        )
    assert feature.value.errors()[0]["loc"] == ("observed_at",)
    with pytest.raises(ValidationError):
        OutcomeEvent.model_validate_json(
            f'{{"unit_id": "u", "outcome_type": "x", "value": 1, "occurred_at": "{at}"}}'
        )


@pytest.mark.parametrize("at", [0, 1_767_225_600, 1.5, True])
def test_a_time_is_rfc_3339_text_not_a_number(at: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        OutcomeIn.model_validate(outcome(occurred_at=at))
    assert "RFC 3339" in refused.value.errors()[0]["msg"]
    with pytest.raises(ValidationError):
        FeatureValue.model_validate_json(
            f'{{"unit_id": "u", "name": "spend", "value": 1.0, "observed_at": {str(at).lower()}}}'
        )


def test_occurred_at_is_converted_to_utc() -> None:
    parsed = OutcomeIn.model_validate(outcome(occurred_at="2026-06-01T14:00:00+02:00"))
    assert parsed.occurred_at == NOW
    assert parsed.occurred_at is not None
    assert parsed.occurred_at.tzinfo is UTC


def service(days: float = 365) -> tuple[OutcomeService, CollectingPublisher]:
    publisher = CollectingPublisher()
    return (
        OutcomeService(publisher, max_batch=10, window=timedelta(days=days), clock=lambda: NOW),
        publisher,
    )


def test_times_within_the_window_are_published_in_utc() -> None:
    outcomes, publisher = service()
    at = NOW - timedelta(days=364)
    outcomes.accept([OutcomeIn.model_validate(outcome(occurred_at=at.isoformat()))])
    assert publisher.events[0].occurred_at == at


@pytest.mark.parametrize("offset", [timedelta(days=366), -timedelta(days=366)])
def test_a_time_outside_the_window_names_the_field_and_the_window(offset: timedelta) -> None:
    outcomes, publisher = service()
    far = OutcomeIn.model_validate(outcome(occurred_at=(NOW + offset).isoformat()))
    with pytest.raises(InvalidInputError) as single:
        outcomes.accept([far], batch=False)
    assert single.value.field == "occurred_at"
    message = single.value.message
    assert message.startswith("occurred_at: ")
    assert "more than 365 days from now" in message
    assert "2025-06-01T12:00:00+00:00 to 2027-06-01T12:00:00+00:00" in message
    assert "SPLITLAB_ROUTER_OCCURRED_AT_WINDOW_DAYS" in message
    with pytest.raises(InvalidInputError) as in_batch:
        outcomes.accept([OutcomeIn.model_validate(outcome()), far])
    assert in_batch.value.field == "outcomes.1.occurred_at"
    assert publisher.events == []  # all or nothing


def test_the_window_is_a_setting() -> None:
    outcomes, _ = service(days=1)
    with pytest.raises(InvalidInputError):
        outcomes.accept([OutcomeIn.model_validate(outcome(occurred_at="2026-05-30T00:00:00Z"))])

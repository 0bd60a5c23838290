"""The router's prediction service with fake models, fake Redis and a collecting publisher:
validation naming the feature, fallback to control, shadows only in events, outcomes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from splitlab.assigning.cache import CachedExperiment, ExperimentCache
from splitlab.assigning.service import AssignmentService
from splitlab.assigning.sticky import StickyStore
from splitlab.platform.errors import ConflictError, InvalidInputError
from splitlab_router.outcomes import OutcomeService
from splitlab_router.predictor import PredictionService, plan_for
from splitlab_router.schemas import OutcomeIn, PredictRequest
from splitlab_router.serving import Feature, ModelError, ModelOutput
from tests.unit.assigning.fakes import CollectingPublisher, FakeRedis

FEATURES = (Feature("x", "float"), Feature("n", "int"))


class FakeModel:
    def __init__(self, ref: str, answer: Any = 1, fail: str | None = None) -> None:
        self.name, _, self.version = ref.partition(":")
        self.features = FEATURES
        self.timeout_s = 1.0
        self.answer = answer
        self.fail = fail
        self.calls = 0

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    async def predict(self, features: Mapping[str, Any]) -> ModelOutput:
        self.calls += 1
        if self.fail:
            raise ModelError(self.fail, f"{self.ref}: {self.fail}")
        return ModelOutput(self.answer, {"0": 0.25, "1": 0.75})


class Catalog:
    def __init__(self, *models: FakeModel) -> None:
        self.models = {m.ref: m for m in models}

    def get(self, ref: str) -> FakeModel | None:
        return self.models.get(ref)


def state(variants: list[dict[str, Any]], status: str = "running") -> dict[str, Any]:
    return {"key": "exp", "status": status, "version": 1, "variants": variants, "coverage": 1.0}


AB = [
    {"key": "control", "weight": 0.5, "model": "a:1"},
    {"key": "treatment", "weight": 0.5, "model": "b:1"},
    {"key": "candidate", "weight": 0.0, "model": "s:1"},
]


def harness(variants: list[dict[str, Any]], *models: FakeModel, status: str = "running") -> Any:
    cache = ExperimentCache()
    cache.put(CachedExperiment.from_state(state(variants, status)))
    publisher = CollectingPublisher()
    store = StickyStore(FakeRedis(), ttl_seconds=60, breaker_seconds=1.0)  # type: ignore[arg-type]
    assigner = AssignmentService(cache, store, publisher, None)
    service = PredictionService(
        assigner,
        Catalog(*models),  # type: ignore[arg-type]
        publisher,
        max_pending_shadows=10,
    )
    return service, publisher


def predict(service: PredictionService, unit: str, **features: Any) -> Any:
    async def run() -> Any:
        answer = await service.predict(
            PredictRequest(unit_id=unit, experiment_key="exp", features=features)
        )
        await service.drain_shadows(1.0)
        return answer

    return asyncio.run(run())


def test_plan_finds_shadows_as_weight_zero_variants_with_a_model() -> None:
    entry = CachedExperiment.from_state(state(AB))
    plan = plan_for(entry)
    assert plan.models == ("a:1", "b:1", "s:1")
    assert plan.shadows == (("candidate", "s:1"),)


def test_answers_come_from_the_variant_model_and_shadows_only_from_events() -> None:
    a, b, s = FakeModel("a:1", 0), FakeModel("b:1", 1), FakeModel("s:1", 2)
    service, publisher = harness(AB, a, b, s)
    answers = [predict(service, f"u{i}", x=0.5, n=3) for i in range(40)]
    assert {r.variant for r in answers} == {"control", "treatment"}
    for r in answers:
        assert r.prediction == (0 if r.variant == "control" else 1)
        assert r.fallback is False
    predictions = [e for e in publisher.events if e.event_type == "prediction"]
    shadows = [e for e in predictions if e.shadow]
    assert len(shadows) == 40
    assert {e.variant for e in shadows} == {"candidate"}
    assert {e.request_id for e in shadows} == {r.request_id for r in answers}
    assert len([e for e in publisher.events if e.event_type == "exposure"]) == 40


def test_a_failing_variant_falls_back_to_control_visibly() -> None:
    a, b = FakeModel("a:1", 0), FakeModel("b:1", fail="timeout")
    service, publisher = harness(AB[:2], a, b)
    answers = [predict(service, f"u{i}", x=0.5, n=3) for i in range(30)]
    treated = [r for r in answers if r.variant == "treatment"]
    assert treated
    assert all(r.fallback and r.model_name == "a" and r.prediction == 0 for r in treated)
    events = {e.request_id: e for e in publisher.events if e.event_type == "prediction"}
    for r in treated:
        assert events[r.request_id].fallback is True
        assert "timeout" in (events[r.request_id].error or "")


def test_features_are_checked_against_every_serving_model_before_assignment() -> None:
    service, publisher = harness(AB[:2], FakeModel("a:1"), FakeModel("b:1"))
    with pytest.raises(InvalidInputError) as missing:
        predict(service, "u1", x=0.5)
    assert missing.value.field == "features.n"
    with pytest.raises(InvalidInputError) as typed:
        predict(service, "u1", x=0.5, n=1.5)
    assert typed.value.field == "features.n"
    with pytest.raises(InvalidInputError):
        predict(service, "u1", x=True, n=1)
    assert publisher.events == [], "nothing is logged for a refused request"


def test_not_running_experiments_are_served_by_control_and_need_a_control_model() -> None:
    service, _ = harness(AB[:2], FakeModel("a:1", 0), FakeModel("b:1", 1), status="paused")
    answer = predict(service, "u1", x=0.1, n=1)
    assert (answer.variant, answer.in_experiment, answer.prediction) == ("control", False, 0)
    no_model = [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]
    service, _ = harness(no_model)
    with pytest.raises(ConflictError):
        predict(service, "u1", x=0.1, n=1)


def test_outcomes_keep_given_ids_generate_missing_ones_and_bound_batches() -> None:
    publisher = CollectingPublisher()
    service = OutcomeService(publisher, max_batch=3)
    given = uuid.uuid4()
    accepted = service.accept(
        [
            OutcomeIn(unit_id="u", outcome_type="click", value=1.0, event_id=given),
            OutcomeIn(unit_id="u", outcome_type="revenue", value=2.5, request_id="r"),
        ]
    )
    assert accepted.accepted == 2
    assert accepted.event_ids[0] == given
    assert [e.event_id for e in publisher.events] == accepted.event_ids
    assert publisher.events[1].request_id == "r"
    parsed = type(publisher.events[0]).model_validate_json(publisher.events[0].to_bytes())
    assert parsed == publisher.events[0]
    with pytest.raises(InvalidInputError) as too_many:
        service.accept([OutcomeIn(unit_id="u", outcome_type="x", value=1.0)] * 4)
    assert too_many.value.field == "outcomes"

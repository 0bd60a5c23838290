"""``/predict`` and ``/outcomes``: for production callers (optional caller key).

``/predict`` is a ``LeanRoute`` (``splitlab.web.routing``): no per-request dependency solving;
the predictor comes from the app's typed state (``deps.state``), the caller-key check still runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from splitlab.web.routing import LeanRoute
from splitlab_router.deps import Caller, Outcomes, state
from splitlab_router.schemas import (
    OutcomeBatch,
    OutcomeIn,
    OutcomesAccepted,
    PredictRequest,
    PredictResponse,
)

router = APIRouter(tags=["prediction"], dependencies=[Caller], route_class=LeanRoute)
outcomes_router = APIRouter(tags=["prediction"], dependencies=[Caller])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        404: {"description": "No such experiment."},
        409: {"description": "The experiment's control variant names no model."},
        422: {"description": "A feature is missing or mistyped; `error.field` names it."},
        503: {"description": "The model failed and control's model did not answer either."},
    },
)
async def predict(body: PredictRequest, request: Request) -> Response:
    """The unit's variant's prediction; a failing variant model answers with control's model
    and ``fallback: true``."""
    answer = await state(request).predictor.predict(body)
    return Response(answer.model_dump_json(), media_type="application/json")


def _standalone(schema: dict[str, Any]) -> Any:
    """A model's JSON schema with its ``$defs`` references replaced by their definitions (the
    document holds no component for a body this route parses itself)."""
    definitions = schema.pop("$defs", {})

    def inline(part: Any) -> Any:
        if isinstance(part, dict):
            ref = part.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in part.items()}
        if isinstance(part, list):
            return [inline(item) for item in part]
        return part

    return inline(schema)


_OUTCOME_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _standalone(OutcomeIn.model_json_schema()),
                        _standalone(OutcomeBatch.model_json_schema()),
                    ]
                }
            }
        },
    }
}


@outcomes_router.post(
    "/outcomes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutcomesAccepted,
    openapi_extra=_OUTCOME_SCHEMA,
    responses={422: {"description": "Invalid outcome; `error.field` names the field."}},
)
async def post_outcomes(request: Request, outcomes: Outcomes) -> Response:
    """One outcome, or ``{"outcomes": [...]}``; each is logged once per ``event_id``."""
    try:
        payload = await request.json()
    except ValueError as exc:  # the same error FastAPI gives a model body that is not JSON
        position = getattr(exc, "pos", None)
        error = {
            "loc": ("body", position) if isinstance(position, int) else ("body",),
            "msg": "JSON decode error",
            "type": "json_invalid",
            "ctx": {"error": getattr(exc, "msg", str(exc))},
        }
        raise RequestValidationError([error]) from None
    try:
        batch = isinstance(payload, dict) and "outcomes" in payload
        if batch:
            items = OutcomeBatch.model_validate(payload).outcomes
        else:
            items = [OutcomeIn.model_validate(payload)]
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    answer = outcomes.accept(items, batch=batch)
    return Response(answer.model_dump_json(), status_code=202, media_type="application/json")

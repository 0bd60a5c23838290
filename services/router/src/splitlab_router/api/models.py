"""Routes of the model registry: registering needs an admin key, reads a read key when one is
configured (``Authorization: Bearer <key>``).

``POST /models`` takes either JSON (a ``ModelCreate``: an http model, or an sklearn file already
in the model store) or ``multipart/form-data`` with a ``spec`` field (the same JSON, as text)
and a ``file`` field (the ``.skops`` file itself, at most ``SPLITLAB_ROUTER_MAX_ARTIFACT_BYTES``):
the upload reaches every replica through Postgres.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from splitlab.platform.errors import InvalidInputError, PayloadTooLargeError
from splitlab.platform.settings import Settings
from splitlab_router.deps import AdminOnly, Models, Reader
from splitlab_router.schemas import ModelCreate, ModelList, ModelRead

router = APIRouter(prefix="/models", tags=["models"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key sent, or none configured."},
    403: {"description": "Wrong key, or a key whose role may not make this call."},
    404: {"description": "No such model version."},
    409: {"description": "This name:version is registered with another spec."},
    413: {"description": "The uploaded file is larger than SPLITLAB_ROUTER_MAX_ARTIFACT_BYTES."},
    422: {
        "description": "Invalid field, an artifact that does not load, or an uploaded file "
        "that is not a trusted .skops file; `error.field` names it."
    },
}
UPLOAD_OVERHEAD_BYTES = 256 * 1024
"""What a multipart upload may carry beside the file (the spec, boundaries, headers)."""


def upload_body_limit(settings: Settings) -> int:
    """The body limit of ``POST /models`` (``create_service_app``'s ``body_limits``)."""
    return settings.router_max_artifact_bytes + UPLOAD_OVERHEAD_BYTES


def _request_body_schema() -> dict[str, Any]:
    spec = ModelCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    spec.pop("$defs", None)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": spec},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["spec", "file"],
                        "properties": {
                            "spec": {
                                "type": "string",
                                "description": "The model version as JSON (the fields of the "
                                "application/json body; flavor sklearn; artifact defaults to "
                                "the file's name).",
                            },
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "The .skops file.",
                            },
                        },
                    }
                },
            },
        }
    }


def _invalid(exc: ValidationError, *prefix: str) -> RequestValidationError:
    return RequestValidationError(
        [{**e, "loc": ("body", *prefix, *e["loc"])} for e in exc.errors(include_url=False)]
    )


def _not_json(exc: ValueError, *prefix: str) -> RequestValidationError:
    position = getattr(exc, "pos", None)
    return RequestValidationError(
        [
            {
                "loc": ("body", *prefix, *([position] if isinstance(position, int) else [])),
                "msg": "JSON decode error",
                "type": "json_invalid",
                "ctx": {"error": getattr(exc, "msg", str(exc))},
            }
        ]
    )


async def _upload(request: Request) -> tuple[ModelCreate, bytes]:
    """The spec and the file of a multipart ``POST /models``."""
    settings: Settings = request.app.state.settings
    limit = settings.router_max_artifact_bytes
    async with request.form(max_files=1, max_fields=10) as form:
        spec_text, upload = form.get("spec"), form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInputError("file: missing; send the .skops file as 'file'", field="file")
        if not isinstance(spec_text, str):
            raise InvalidInputError(
                "spec: missing; send the model version's JSON as the form field 'spec'",
                field="spec",
            )
        content = await upload.read(limit + 1)
        filename = (upload.filename or "").rsplit("/", 1)[-1]
    if len(content) > limit:
        raise PayloadTooLargeError(
            f"file: larger than {limit} bytes (SPLITLAB_ROUTER_MAX_ARTIFACT_BYTES)", field="file"
        )
    if not content:
        raise InvalidInputError("file: the uploaded file is empty", field="file")
    try:
        spec = json.loads(spec_text)
    except ValueError as exc:
        raise _not_json(exc, "spec") from None
    if isinstance(spec, dict) and not spec.get("artifact"):
        spec = {**spec, "artifact": filename}
    try:
        return ModelCreate.model_validate(spec), content
    except ValidationError as exc:
        raise _invalid(exc, "spec") from None


@router.post(
    "",
    status_code=201,
    response_model=ModelRead,
    responses={
        **ERRORS,
        200: {"model": ModelRead, "description": "Already registered with this very spec."},
    },
    dependencies=[AdminOnly],
    openapi_extra=_request_body_schema(),
)
async def register_model(request: Request, models: Models) -> JSONResponse:
    """Register a model version (201), or answer the identical one already registered (200).

    JSON: an http model, or an sklearn file already in the model store. Multipart (``spec`` +
    ``file``): upload a ``.skops`` file, checked with skops' trusted-types check and stored in
    Postgres with its sha256, which every replica loads. An sklearn artifact is loaded and
    checked against the input schema before it is stored."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        spec, content = await _upload(request)
        read, created = await run_in_threadpool(models.register_upload, spec, content)
    else:
        try:
            payload = await request.json()
        except ValueError as exc:
            raise _not_json(exc) from None
        try:
            body = ModelCreate.model_validate(payload)
        except ValidationError as exc:
            raise _invalid(exc) from None
        read, created = await run_in_threadpool(models.register, body)
    return JSONResponse(read.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("", responses=ERRORS, dependencies=[Reader])
def list_models(models: Models, name: Annotated[str | None, Query()] = None) -> ModelList:
    return models.list_all(name)


@router.get("/{name}/{version}", responses=ERRORS, dependencies=[Reader])
def get_model(name: str, version: str, models: Models) -> ModelRead:
    return models.get(name, version)

"""The model registry (Postgres) and this replica's catalog of loaded models.

``ModelRegistry`` registers, lists and shows model versions (admin API and CLI). A version is
immutable: registering the same ``name:version`` again with the same spec answers the stored
one, with a different spec 409. An sklearn artifact is checked at registration: it must be in
the model store, load, and accept the input schema's width; its sha256 is stored, and every
replica verifies it when loading, so a replaced file is refused rather than served.

``ModelCatalog`` holds the loaded models by ``name:version``. ``refresh`` (every
``SPLITLAB_ROUTER_MODEL_REFRESH_SECONDS``, and at once after a registration through this
replica) loads versions it has not seen and forgets removed ones: hot reload without restarts.
Readers never lock: a refresh builds a new dict and swaps it in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from splitlab.storage.models import RegisteredModel
from splitlab.web.errors import ConflictError, InvalidInputError, NotFoundError
from splitlab_router.metrics import MODEL_LOAD_FAILURES, MODELS_LOADED
from splitlab_router.repository import ModelRepository
from splitlab_router.schemas import FeatureSpec, ModelCreate, ModelList, ModelRead
from splitlab_router.serving import (
    Feature,
    HttpModel,
    ServedModel,
    SklearnModel,
    file_sha256,
    load_estimator,
    resolve_artifact,
    without_paths,
)

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ModelCatalog:
    """Loaded models of this replica, keyed by ``name:version``."""

    def __init__(
        self,
        store: Path,
        executor: Executor,
        http: httpx.AsyncClient,
        default_timeout_ms: int,
    ) -> None:
        self.store = store
        self._executor = executor
        self._http = http
        self._default_timeout_ms = default_timeout_ms
        self._models: dict[str, ServedModel] = {}
        self._loaded_ids: dict[str, int] = {}  # ref -> row id (a re-created row reloads)
        self._failed: dict[str, int] = {}  # ref -> row id that failed to load (not retried)

    def get(self, ref: str) -> ServedModel | None:
        return self._models.get(ref)

    def __contains__(self, ref: object) -> bool:
        return ref in self._models

    def __len__(self) -> int:
        return len(self._models)

    def build(self, row: RegisteredModel) -> ServedModel:
        """Load one registered version (blocking for sklearn: call from a thread)."""
        features = [Feature(f["name"], f.get("type", "float")) for f in row.input_schema]
        timeout_s = (row.timeout_ms or self._default_timeout_ms) / 1000
        if row.flavor == "http":
            assert row.url is not None
            return HttpModel(row.name, row.version, features, row.url, self._http, timeout_s)
        assert row.artifact is not None
        path = resolve_artifact(self.store, row.artifact)
        if row.sha256 is not None and file_sha256(path) != row.sha256:
            raise ValueError(
                f"{row.artifact}: sha256 differs from the registered one; the file was replaced "
                "(register a new version instead)"
            )
        estimator = load_estimator(path)
        return SklearnModel(row.name, row.version, features, estimator, self._executor, timeout_s)

    def refresh(self, sessions: sessionmaker[Session]) -> int:
        """Load new versions, forget removed ones; returns how many were loaded (blocking)."""
        with sessions() as session:
            rows = ModelRepository(session).list()
        present = {f"{r.name}:{r.version}": r for r in rows}
        models = {ref: m for ref, m in self._models.items() if ref in present}
        loaded_ids = {ref: i for ref, i in self._loaded_ids.items() if ref in present}
        loaded = 0
        for ref, row in present.items():
            if loaded_ids.get(ref) == row.id or self._failed.get(ref) == row.id:
                continue
            try:
                models[ref] = self.build(row)
            except Exception as exc:
                self._failed[ref] = row.id
                MODEL_LOAD_FAILURES.labels(ref).inc()
                logger.error(
                    "model failed to load; variants naming it fall back to control",
                    extra={"model": ref, "reason": f"{type(exc).__name__}: {exc}"},
                )
                continue
            loaded_ids[ref] = row.id
            self._failed.pop(ref, None)
            loaded += 1
        self._models = models
        self._loaded_ids = loaded_ids
        MODELS_LOADED.set(len(models))
        return loaded

    def install(self, row: RegisteredModel, model: ServedModel) -> None:
        ref = f"{row.name}:{row.version}"
        models = dict(self._models)
        models[ref] = model
        self._models = models
        self._loaded_ids = {**self._loaded_ids, ref: row.id}
        MODELS_LOADED.set(len(models))


def to_read(row: RegisteredModel, loaded: bool) -> ModelRead:
    return ModelRead(
        name=row.name,
        version=row.version,
        ref=f"{row.name}:{row.version}",
        flavor=row.flavor,
        artifact=row.artifact,
        sha256=row.sha256,
        url=row.url,
        timeout_ms=row.timeout_ms,
        input_schema=[FeatureSpec.model_validate(f) for f in row.input_schema],
        metadata=row.model_metadata,
        created_at=row.created_at,
        loaded=loaded,
    )


def _differences(
    row: RegisteredModel, data: ModelCreate, sha256: str | None, timeout: int
) -> list[str]:
    """The fields of the stored version that ``data`` would change (empty: the same spec)."""
    sent = {
        "flavor": data.flavor,
        "artifact": data.artifact if data.flavor == "sklearn" else None,
        "sha256": sha256,
        "url": data.url if data.flavor == "http" else None,
        "timeout_ms": timeout,
        "input_schema": [f.model_dump() for f in data.input_schema],
        "metadata": data.metadata,
    }
    stored = {
        "flavor": row.flavor,
        "artifact": row.artifact,
        "sha256": row.sha256,
        "url": row.url,
        "timeout_ms": row.timeout_ms,
        "input_schema": row.input_schema,
        "metadata": row.model_metadata,
    }
    return [name for name, value in sent.items() if stored[name] != value]


_BYTE_RULE = (
    "a version is bound to the exact bytes of its file (sha256), and saving a model again "
    "writes different bytes even when the model is the same (skops and joblib archives carry "
    "their own metadata); register the new file as a new version, or put the registered file "
    "back"
)


class ModelRegistry:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        catalog: ModelCatalog,
        default_timeout_ms: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._default_timeout_ms = default_timeout_ms
        self._clock = clock

    def get(self, name: str, version: str) -> ModelRead:
        with self._sessions() as session:
            row = ModelRepository(session).get(name, version)
            if row is None:
                raise NotFoundError(f"no model {name}:{version}", field="version")
            return to_read(row, f"{name}:{version}" in self._catalog)

    def list_all(self, name: str | None = None) -> ModelList:
        with self._sessions() as session:
            rows = ModelRepository(session).list(name)
            return ModelList(
                models=[to_read(r, f"{r.name}:{r.version}" in self._catalog) for r in rows]
            )

    def register(self, data: ModelCreate) -> tuple[ModelRead, bool]:
        """Store a new version (loading it here first); ``(read, created)``. Blocking."""
        timeout = data.timeout_ms or self._default_timeout_ms
        sha256 = None
        if data.flavor == "sklearn":
            assert data.artifact is not None
            sha256 = file_sha256(resolve_artifact(self._catalog.store, data.artifact))
        row = RegisteredModel(
            name=data.name,
            version=data.version,
            flavor=data.flavor,
            artifact=data.artifact if data.flavor == "sklearn" else None,
            sha256=sha256,
            url=data.url if data.flavor == "http" else None,
            timeout_ms=timeout,
            input_schema=[f.model_dump() for f in data.input_schema],
            model_metadata=data.metadata,
            created_at=self._clock(),
        )
        with self._sessions() as session:
            existing = ModelRepository(session).get(data.name, data.version)
            if existing is not None:
                return self._existing(existing, data, sha256, timeout)
        model = self._load_checked(row)
        try:
            with self._sessions.begin() as session:
                ModelRepository(session).add(row)
        except IntegrityError:
            with self._sessions() as session:
                existing = ModelRepository(session).get(data.name, data.version)
                assert existing is not None
                return self._existing(existing, data, sha256, timeout)
        self._catalog.install(row, model)
        return to_read(row, True), True

    def _existing(
        self, row: RegisteredModel, data: ModelCreate, sha256: str | None, timeout: int
    ) -> tuple[ModelRead, bool]:
        changed = _differences(row, data, sha256, timeout)
        if not changed:
            return to_read(row, f"{row.name}:{row.version}" in self._catalog), False
        ref = f"{data.name}:{data.version}"
        if changed == ["sha256"]:
            raise ConflictError(
                f"model {ref} is registered with {row.artifact} of sha256 {row.sha256}, and that "
                f"file now has sha256 {sha256}: {_BYTE_RULE}",
                field="artifact",
            )
        raise ConflictError(
            f"model {ref} is registered with another spec ({', '.join(changed)} differ); "
            "versions never change: register a new version",
            field="version",
        )

    def _load_checked(self, row: RegisteredModel) -> ServedModel:
        try:
            model = self._catalog.build(row)
        except InvalidInputError:
            raise
        except Exception as exc:
            reason = without_paths(f"{type(exc).__name__}: {exc}")
            raise InvalidInputError(
                f"artifact: {row.artifact} does not load: {reason}"[:500], field="artifact"
            ) from None
        width = getattr(getattr(model, "_estimator", None), "n_features_in_", None)
        if width is not None and int(width) != len(row.input_schema):
            raise InvalidInputError(
                f"input_schema: the model takes {int(width)} features, the schema lists "
                f"{len(row.input_schema)}",
                field="input_schema",
            )
        names: Any = getattr(getattr(model, "_estimator", None), "feature_names_in_", None)
        if names is not None and [str(n) for n in names] != [f["name"] for f in row.input_schema]:
            raise InvalidInputError(
                f"input_schema: the model was fitted on columns {[str(n) for n in names]}, in "
                "that order",
                field="input_schema",
            )
        return model

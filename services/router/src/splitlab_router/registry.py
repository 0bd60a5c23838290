"""The model registry (Postgres) and this replica's catalog of loaded models.

``ModelRegistry`` registers, lists and shows model versions (admin API and CLI). A version is
immutable: registering the same ``name:version`` again with the same spec answers the stored
one, with a different spec 409. An sklearn artifact is checked at registration: it must be in
the model store, load, and accept the input schema's width; its sha256 is stored, and every
replica verifies it when loading, so a replaced file is refused rather than served.

``register_upload`` takes the file itself (``POST /models`` as multipart): only ``.skops``
(loading a joblib or pickle file runs code), loaded with skops' trusted-types check, checked
like a store file, and kept in Postgres (``model_artifacts``, by sha256) in the same
transaction as the version's row, so every replica loads it from there: no shared disk, no
copying files by hand. See docs/router.md, "Uploading a model".

``ModelCatalog`` holds the loaded models by ``name:version``. ``refresh`` (every
``SPLITLAB_ROUTER_MODEL_REFRESH_SECONDS``, and at once after a registration through this
replica) loads versions it has not seen and forgets removed ones: hot reload without restarts.
Readers never lock: a refresh builds a new dict and swaps it in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from splitlab.platform.errors import ConflictError, InvalidInputError, NotFoundError
from splitlab.platform.storage.models import RegisteredModel
from splitlab_router.metrics import MODEL_LOAD_FAILURES, MODELS_LOADED
from splitlab_router.repository import ModelRepository
from splitlab_router.schemas import FeatureSpec, ModelCreate, ModelList, ModelRead
from splitlab_router.serving import (
    Feature,
    HttpModel,
    ModelServers,
    ServedModel,
    SklearnModel,
    UntrustedArtifactError,
    file_sha256,
    load_estimator,
    load_skops_bytes,
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
        servers: ModelServers,
        default_timeout_ms: int,
    ) -> None:
        self.store = store
        self._executor = executor
        self._servers = servers
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

    def build(self, row: RegisteredModel, content: bytes | None = None) -> ServedModel:
        """Load one registered version (blocking for sklearn: call from a thread); ``content``
        is its uploaded file (from ``model_artifacts``), else it comes from the model store."""
        features = [Feature(f["name"], f.get("type", "float")) for f in row.input_schema]
        timeout_s = (row.timeout_ms or self._default_timeout_ms) / 1000
        if row.flavor == "http":
            assert row.url is not None
            client = self._servers.client_for(row.url)
            return HttpModel(row.name, row.version, features, row.url, client, timeout_s)
        assert row.artifact is not None
        if content is not None:
            if hashlib.sha256(content).hexdigest() != row.sha256:
                raise ValueError(f"{row.artifact}: the stored upload's sha256 differs")
            estimator = load_skops_bytes(content)
            return SklearnModel(
                row.name, row.version, features, estimator, self._executor, timeout_s
            )
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
            repository = ModelRepository(session)
            rows = repository.list()
            present = {f"{r.name}:{r.version}": r for r in rows}
            todo = {
                ref: row
                for ref, row in present.items()
                if self._loaded_ids.get(ref) != row.id and self._failed.get(ref) != row.id
            }
            uploads = repository.artifacts(
                r.sha256 for r in todo.values() if r.flavor == "sklearn" and r.sha256
            )
        models = {ref: m for ref, m in self._models.items() if ref in present}
        loaded_ids = {ref: i for ref, i in self._loaded_ids.items() if ref in present}
        loaded = 0
        for ref in present:
            MODEL_LOAD_FAILURES.labels(ref)  # at 0 from the first sight: a failure is an increase
        for ref, row in todo.items():
            try:
                models[ref] = self.build(row, uploads.get(row.sha256 or ""))
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
        MODEL_LOAD_FAILURES.labels(ref)
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


def _check_announced(data: ModelCreate, sha256: str) -> None:
    if data.sha256 is not None and data.sha256 != sha256:
        raise InvalidInputError(
            f"sha256: the artifact's sha256 is {sha256}, not {data.sha256}; the file changed on "
            "the way or is another one",
            field="sha256",
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
            _check_announced(data, sha256)
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

    def register_upload(self, data: ModelCreate, content: bytes) -> tuple[ModelRead, bool]:
        """Store a new version from an uploaded .skops file (its bytes go to Postgres with the
        row; ``data.artifact`` is the file's name); ``(read, created)``. Blocking. 422 naming
        ``file`` for a file that is not a trusted, loadable .skops file, ``sha256`` for one
        whose checksum differs from the one announced."""
        filename = str(data.artifact)
        if data.flavor != "sklearn":
            raise InvalidInputError(
                "flavor: an uploaded file is a scikit-learn model; use flavor sklearn",
                field="flavor",
            )
        if not filename.endswith(".skops"):
            raise InvalidInputError(
                f"file: {filename!r} is not a .skops file; only skops files can be uploaded "
                "(loading a joblib or pickle file runs whatever code it holds): save the model "
                "with skops.io.dump",
                field="file",
            )
        sha256 = hashlib.sha256(content).hexdigest()
        _check_announced(data, sha256)
        timeout = data.timeout_ms or self._default_timeout_ms
        with self._sessions() as session:
            existing = ModelRepository(session).get(data.name, data.version)
            if existing is not None:
                return self._existing(existing, data, sha256, timeout)
        row = RegisteredModel(
            name=data.name,
            version=data.version,
            flavor="sklearn",
            artifact=data.artifact,
            sha256=sha256,
            url=None,
            timeout_ms=timeout,
            input_schema=[f.model_dump() for f in data.input_schema],
            model_metadata=data.metadata,
            created_at=self._clock(),
        )
        try:
            model = self._checked(row, self._catalog.build(row, content))
        except UntrustedArtifactError as exc:
            raise InvalidInputError(f"file: {filename}: {exc}", field="file") from None
        try:
            with self._sessions.begin() as session:
                repository = ModelRepository(session)
                repository.add_artifact(sha256, content, row.created_at)
                repository.add(row)
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
        return self._checked(row, model)

    @staticmethod
    def _checked(row: RegisteredModel, model: ServedModel) -> ServedModel:
        """The model if it takes the input schema's features (width, and names if fitted on a
        DataFrame); 422 naming ``input_schema`` otherwise."""
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

"""Model flavors: how a registered model version is loaded, validated against and called.

- ``SklearnModel``: a scikit-learn estimator from a ``.skops`` file (loaded with skops' safe
  loader, refusing types it does not trust) or a ``.joblib``/``.pkl`` file (trusted store only),
  called in a thread pool so the event loop never runs a prediction;
- ``HttpModel``: a remote model server; the router POSTs ``{"instances": [features]}`` and reads
  ``{"predictions": [p]}`` where ``p`` is a value or ``{"value", "probabilities"}`` (KServe's V1
  shape; a thin adapter fits Seldon or BentoML).

Both answer a ``ModelOutput`` or raise ``ModelError`` (``kind`` ``error`` or ``timeout``);
``validate_features`` raises ``InvalidInputError`` naming the feature.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from splitlab.web.errors import InvalidInputError

SKOPS_SUFFIXES = frozenset({".skops"})
JOBLIB_SUFFIXES = frozenset({".joblib", ".pkl"})


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class ModelOutput:
    value: Any
    probabilities: dict[str, float] | None = None

    def as_event(self) -> dict[str, Any]:
        return {"value": self.value, "probabilities": self.probabilities}


class ModelError(Exception):
    """A model call that gave no answer: ``kind`` is ``timeout`` or ``error``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ServedModel(Protocol):
    name: str
    version: str
    features: tuple[Feature, ...]
    timeout_s: float

    @property
    def ref(self) -> str: ...

    async def predict(self, features: Mapping[str, Any]) -> ModelOutput: ...


def _type_ok(kind: str, value: object) -> bool:
    if kind == "float":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def validate_features(model: ServedModel, features: Mapping[str, Any]) -> None:
    """``InvalidInputError`` (422) naming the first missing or mistyped feature."""
    for feature in model.features:
        if feature.name not in features:
            raise InvalidInputError(
                f"features.{feature.name}: missing; model {model.ref} needs a {feature.type}",
                field=f"features.{feature.name}",
            )
        value = features[feature.name]
        if not _type_ok(feature.type, value):
            raise InvalidInputError(
                f"features.{feature.name}: model {model.ref} needs a {feature.type}, "
                f"got {type(value).__name__} {value!r:.40}",
                field=f"features.{feature.name}",
            )


def _plain(value: Any) -> Any:
    """numpy scalars to Python (JSON-able)."""
    return value.item() if isinstance(value, np.generic) else value


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_artifact(store: Path, artifact: str) -> Path:
    """The artifact's path inside the model store; ``InvalidInputError`` if outside or missing."""
    root = store.resolve()
    path = (root / artifact).resolve()
    if not path.is_relative_to(root):
        raise InvalidInputError(
            f"artifact: {artifact!r} is outside the model store {root}", field="artifact"
        )
    if not path.is_file():
        raise InvalidInputError(
            f"artifact: no file {artifact!r} in the model store {root}", field="artifact"
        )
    if path.suffix not in SKOPS_SUFFIXES | JOBLIB_SUFFIXES:
        raise InvalidInputError(
            f"artifact: {path.name} is neither a .skops nor a .joblib/.pkl file", field="artifact"
        )
    return path


def load_estimator(path: Path) -> Any:
    """Read an estimator file (blocking: call from a thread)."""
    if path.suffix in SKOPS_SUFFIXES:
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        if untrusted:
            raise ValueError(
                f"{path.name} holds types skops does not trust: {', '.join(untrusted[:5])}"
            )
        return skops.io.load(path)
    import joblib

    return joblib.load(path)


class SklearnModel:
    def __init__(
        self,
        name: str,
        version: str,
        features: Sequence[Feature],
        estimator: Any,
        executor: Executor,
        timeout_s: float,
    ) -> None:
        self.name = name
        self.version = version
        self.features = tuple(features)
        self.timeout_s = timeout_s
        self._estimator = estimator
        self._executor = executor
        self._names = [f.name for f in self.features]
        # A model fitted on a DataFrame wants one (named columns); otherwise a float array.
        self._frame = hasattr(estimator, "feature_names_in_") or any(
            f.type == "str" for f in self.features
        )
        self._proba = hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")
        self._classes = [str(_plain(c)) for c in estimator.classes_] if self._proba else []
        self._class_values = list(estimator.classes_) if self._proba else []

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def predict_now(self, features: Mapping[str, Any]) -> ModelOutput:
        """The blocking call (runs in the pool)."""
        if self._frame:
            import pandas as pd

            x: Any = pd.DataFrame([[features[n] for n in self._names]], columns=self._names)
        else:
            x = np.array([[features[n] for n in self._names]], dtype=float)
        if self._proba:
            row = self._estimator.predict_proba(x)[0]
            best = int(np.argmax(row))
            return ModelOutput(
                _plain(self._class_values[best]),
                {c: float(p) for c, p in zip(self._classes, row, strict=True)},
            )
        return ModelOutput(_plain(self._estimator.predict(x)[0]))

    async def predict(self, features: Mapping[str, Any]) -> ModelOutput:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self.predict_now, features)
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise ModelError("timeout", f"{self.ref}: no answer in {self.timeout_s:g}s") from None
        except Exception as exc:
            raise ModelError("error", f"{self.ref}: {type(exc).__name__}: {exc}"[:500]) from None


class HttpModel:
    def __init__(
        self,
        name: str,
        version: str,
        features: Sequence[Feature],
        url: str,
        client: httpx.AsyncClient,
        timeout_s: float,
    ) -> None:
        self.name = name
        self.version = version
        self.features = tuple(features)
        self.timeout_s = timeout_s
        self.url = url
        self._client = client

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    async def predict(self, features: Mapping[str, Any]) -> ModelOutput:
        body = {"instances": [{f.name: features[f.name] for f in self.features}]}
        try:
            response = await asyncio.wait_for(
                self._client.post(self.url, json=body, timeout=self.timeout_s), self.timeout_s
            )
        except (TimeoutError, httpx.TimeoutException):
            raise ModelError("timeout", f"{self.ref}: no answer in {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise ModelError("error", f"{self.ref}: {type(exc).__name__}: {exc}"[:500]) from None
        if response.status_code != 200:
            raise ModelError(
                "error", f"{self.ref}: HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            answer = response.json()["predictions"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelError(
                "error", f"{self.ref}: the answer has no predictions[0]: {response.text[:200]}"
            ) from None
        if isinstance(answer, dict) and "value" in answer:
            probabilities = answer.get("probabilities")
            if probabilities is not None and not isinstance(probabilities, dict):
                raise ModelError("error", f"{self.ref}: probabilities must be an object")
            return ModelOutput(
                answer["value"],
                None
                if probabilities is None
                else {str(k): float(v) for k, v in probabilities.items()},
            )
        return ModelOutput(answer)

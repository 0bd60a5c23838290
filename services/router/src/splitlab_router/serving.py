"""Model flavors: how a registered model version is loaded, validated against and called.

- ``SklearnModel``: a scikit-learn estimator from a ``.skops`` file (loaded with skops' safe
  loader, refusing types it does not trust) or a ``.joblib``/``.pkl`` file (trusted store only).
  A model starts in a thread pool (with its timeout); once its calls are known to cost less than
  ``INLINE_BUDGET_S`` (a moving average of the calling thread's CPU time, which neither waiting
  for the interpreter lock nor being preempted inflates) it runs inline on the event loop, where
  a 1-row ``predict_proba`` of a small model costs less than the pool hop itself; it goes back
  to the pool when the average rises over the budget. Models that use threads of their own
  (``n_jobs`` other than 1) always run in the pool;
- ``HttpModel``: a remote model server; the router POSTs ``{"instances": [features]}`` and reads
  ``{"predictions": [p]}`` where ``p`` is a value or ``{"value", "probabilities"}`` (KServe's V1
  shape; a thin adapter fits Seldon or BentoML). ``ModelServers`` keeps one connection pool per
  model server (scheme, host and port; httpcore's ``AsyncConnectionPool``, the transport under
  httpx), created on first use and closed at shutdown, so calls reuse keep-alive connections and
  one slow server cannot take another's pool.

Both answer a ``ModelOutput`` or raise ``ModelError`` (``kind`` ``error`` or ``timeout``);
``validate_features`` raises ``InvalidInputError`` naming the feature.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpcore
import httpx
import numpy as np

from splitlab.platform.errors import InvalidInputError
from splitlab_router.transport import AsyncioBackend

INLINE_BUDGET_S = 0.001
"""A model whose calls average less than this runs inline on the event loop (no pool hop)."""
_WARMUP_CALLS = 8
"""Pool calls measured before a model may run inline."""
_EWMA_WEIGHT = 0.1

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


MODEL_STORE = "the models folder of SPLITLAB_STATE_DIR"
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def without_paths(text: str) -> str:
    """``text`` (a library's error message) with absolute paths cut to their last part."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def resolve_artifact(store: Path, artifact: str) -> Path:
    """The artifact's path inside the model store; ``InvalidInputError`` if outside or missing."""
    root = store.resolve()
    path = (root / artifact).resolve()
    # Messages name the artifact and the setting, never the server's folders (a caller has no
    # business knowing them).
    if not path.is_relative_to(root):
        raise InvalidInputError(
            f"artifact: {artifact!r} is outside the model store; give a path relative to it "
            f"({MODEL_STORE})",
            field="artifact",
        )
    if not path.is_file():
        raise InvalidInputError(
            f"artifact: no file {artifact!r} in the model store ({MODEL_STORE}); copy it there "
            "first, or check the name",
            field="artifact",
        )
    if path.suffix not in SKOPS_SUFFIXES | JOBLIB_SUFFIXES:
        raise InvalidInputError(
            f"artifact: {path.name} is neither a .skops nor a .joblib/.pkl file", field="artifact"
        )
    return path


class UntrustedArtifactError(ValueError):
    """A model file that is not a readable .skops file, or holds types skops does not trust."""


def load_skops_bytes(content: bytes) -> Any:
    """An estimator from the bytes of a .skops file, with skops' trusted-types check on
    (blocking: call from a thread). ``UntrustedArtifactError`` says what is wrong."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=content)
    except Exception as exc:  # skops reads a zip archive with a schema: anything may fail
        raise UntrustedArtifactError(
            f"not a readable .skops file ({type(exc).__name__}: {exc}"[:300] + ")"
        ) from None
    if untrusted:
        raise UntrustedArtifactError(
            f"holds types skops does not trust: {', '.join(untrusted[:5])}; save the model "
            "with scikit-learn types only"
        )
    try:
        return skops.io.loads(content)
    except Exception as exc:
        raise UntrustedArtifactError(
            f"not a loadable .skops file ({type(exc).__name__}: {exc}"[:300] + ")"
        ) from None


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
        self._mean_s = 0.0  # moving average of predict_now's CPU time in the calling thread
        self._measured = 0
        # Work in other threads is invisible to the calling thread's CPU time: never inline.
        self._pool_only = getattr(estimator, "n_jobs", None) not in (None, 1)

    @property
    def inline(self) -> bool:
        """Whether calls run on the event loop (measured cheap) rather than in the pool."""
        return (
            not self._pool_only
            and self._measured >= _WARMUP_CALLS
            and self._mean_s < INLINE_BUDGET_S
        )

    def _measure(self, seconds: float) -> None:
        self._measured += 1
        weight = 1.0 / self._measured if self._measured < _WARMUP_CALLS else _EWMA_WEIGHT
        self._mean_s += weight * (seconds - self._mean_s)

    def _timed(self, features: Mapping[str, Any]) -> ModelOutput:
        start = time.thread_time()
        try:
            return self.predict_now(features)
        finally:
            self._measure(time.thread_time() - start)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def predict_now(self, features: Mapping[str, Any]) -> ModelOutput:
        """The blocking call (in the pool, or inline once measured cheap)."""
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
        if self.inline:
            try:
                return self._timed(features)
            except Exception as exc:
                message = f"{self.ref}: {type(exc).__name__}: {exc}"[:500]
                raise ModelError("error", message) from None
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._timed, features)
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise ModelError("timeout", f"{self.ref}: no answer in {self.timeout_s:g}s") from None
        except Exception as exc:
            raise ModelError("error", f"{self.ref}: {type(exc).__name__}: {exc}"[:500]) from None


class ModelServers:
    """One connection pool per model server (``scheme://host:port``).

    ``factory`` builds a pool (``splitlab.platform.connections.create_model_server_pool``, limits
    from the settings); each is created the first time a model on that server is built and closed by
    ``aclose`` at shutdown. httpcore's pool rather than an ``httpx.AsyncClient``: the call needs
    none of httpx's layer (auth, cookies, redirects, proxies from the environment, event hooks),
    which cost about 0.4 ms of CPU per call (1.1-1.3 against 0.73 ms, same server, same run)."""

    def __init__(self, factory: Callable[..., httpcore.AsyncConnectionPool]) -> None:
        """``factory(**options)``: a pool; plain-HTTP servers get ``network_backend`` (asyncio
        streams, see ``splitlab_router.transport``), HTTPS ones httpcore's default."""
        self._factory = factory
        self._clients: dict[str, httpcore.AsyncConnectionPool] = {}

    def client_for(self, url: str) -> httpcore.AsyncConnectionPool:
        base = server_of(url)
        client = self._clients.get(base)
        if client is None:
            options = {"network_backend": AsyncioBackend()} if base.startswith("http:") else {}
            client = self._clients[base] = self._factory(**options)
        return client

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def server_of(url: str) -> str:
    """``scheme://host:port`` of a URL (the port made explicit): the key of its pool."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.scheme}://{parsed.host}:{port}"


_JSON_HEADERS = [(b"content-type", b"application/json"), (b"accept", b"application/json")]


class HttpModel:
    def __init__(
        self,
        name: str,
        version: str,
        features: Sequence[Feature],
        url: str,
        client: httpcore.AsyncConnectionPool,
        timeout_s: float,
    ) -> None:
        self.name = name
        self.version = version
        self.features = tuple(features)
        self.timeout_s = timeout_s
        self.url = url
        self._client = client
        self._target = httpcore.URL(url)
        phases = ("connect", "read", "write", "pool")
        self._extensions = {"timeout": dict.fromkeys(phases, timeout_s)}
        self._names = [f.name for f in self.features]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    async def predict(self, features: Mapping[str, Any]) -> ModelOutput:
        body = json.dumps({"instances": [{n: features[n] for n in self._names}]}).encode()
        try:
            # One deadline for the whole call (the pool's own limits are per phase); no task.
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.request(
                    "POST",
                    self._target,
                    headers=_JSON_HEADERS,
                    content=body,
                    extensions=self._extensions,
                )
        except (TimeoutError, httpcore.TimeoutException):
            raise ModelError("timeout", f"{self.ref}: no answer in {self.timeout_s:g}s") from None
        except Exception as exc:  # connection refused or reset, protocol errors: no answer
            raise ModelError("error", f"{self.ref}: {type(exc).__name__}: {exc}"[:500]) from None
        text = response.content[:200].decode("utf-8", "replace")
        if response.status != 200:
            raise ModelError("error", f"{self.ref}: HTTP {response.status}: {text}")
        try:
            answer = json.loads(response.content)["predictions"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelError(
                "error", f"{self.ref}: the answer has no predictions[0]: {text}"
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

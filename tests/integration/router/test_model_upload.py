"""``POST /models`` with the .skops file itself (multipart): checksummed, stored in Postgres, and
loaded by a replica that has never seen the file (an empty model store of its own); corrupt,
untrusted, non-skops, oversized and mis-checksummed uploads are refused naming the problem."""

from __future__ import annotations

import collections
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sqlalchemy import Engine

from splitlab.platform.settings import Settings
from splitlab_router.app import create_app
from tests.integration.router.conftest import (
    ADMIN,
    FEATURES,
    Setup,
    insert_experiment,
    wait_for_experiment,
)
from tests.support.waiting import wait_until

X = {"x1": 0.3, "x2": -1.2}


def fitted() -> LogisticRegression:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    return LogisticRegression().fit(x, (x[:, 0] - x[:, 1] > 0).astype(int))


def upload(
    client: TestClient, name: str, content: bytes, filename: str = "model.skops", **spec: Any
) -> Any:
    body = {"name": name, "version": "1", "flavor": "sklearn", "input_schema": FEATURES, **spec}
    return client.post(
        "/models",
        data={"spec": json.dumps(body)},
        files={"file": (filename, content, "application/octet-stream")},
        headers=ADMIN,
    )


def test_an_uploaded_model_reaches_a_replica_without_the_file(
    router_settings: Settings, engine: Engine, ab: Setup, tmp_path: Path
) -> None:
    model = fitted()
    content = skops.io.dumps(model)
    name = ab.names["a"]
    other_store = router_settings.model_copy(update={"state_dir": tmp_path / "replica-2"})
    with TestClient(create_app(router_settings)) as first:
        sha256 = hashlib.sha256(content).hexdigest()
        created = upload(first, name, content, "ranker.skops", sha256=sha256)
        assert created.status_code == 201, created.text
        read = created.json()
        assert read["sha256"] == hashlib.sha256(content).hexdigest()
        assert (read["artifact"], read["loaded"]) == ("ranker.skops", True)
        assert upload(first, name, content, "ranker.skops").status_code == 200  # the same again
        assert not (router_settings.model_store_dir / "ranker.skops").exists()

    variants = [{"key": k, "weight": 0.5, "model": f"{name}:1"} for k in ("control", "treatment")]
    insert_experiment(engine, ab.key, variants)
    with TestClient(create_app(other_store)) as replica:
        assert not any(other_store.model_store_dir.iterdir())
        wait_until(
            lambda: replica.get(f"/models/{name}/1").json()["loaded"], 10, "the replica to load it"
        )
        wait_for_experiment(replica, ab.key, X)
        answer = replica.post("/predict", json={"unit_id": "u1", "experiment_key": ab.key,
                                                "features": X})  # fmt: skip
        assert answer.status_code == 200, answer.text
        expected = model.predict_proba(np.array([[X["x1"], X["x2"]]]))[0]
        assert answer.json()["probabilities"] == {
            str(c): float(p) for c, p in zip(model.classes_, expected, strict=True)
        }


def test_bad_uploads_are_refused_naming_the_problem(
    router_settings: Settings, router: TestClient, ab: Setup
) -> None:
    good = skops.io.dumps(fitted())
    untrusted_model = fitted()
    untrusted_model.extra_ = collections.Counter(a=1)  # type: ignore[attr-defined]
    cases = [
        (b"PK\x03\x04 not really a zip", "x.skops", "file", "not a readable .skops file"),
        (skops.io.dumps(untrusted_model), "x.skops", "file", "collections.Counter"),
        (good, "x.joblib", "file", "only skops files can be uploaded"),
    ]
    for i, (content, filename, field, words) in enumerate(cases):
        refused = upload(router, f"{ab.names['a']}-{i}", content, filename)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert (error["field"], words in error["message"]) == (field, True), error

    wrong = upload(router, ab.names["b"], good, sha256="0" * 64)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "sha256"
    assert router.get("/models", headers=ADMIN).json()["models"] == []

    small = router_settings.model_copy(update={"router_max_artifact_bytes": len(good) - 1})
    with TestClient(create_app(small)) as capped:
        too_big = upload(capped, ab.names["b"], good)
    assert too_big.status_code == 413
    assert "SPLITLAB_ROUTER_MAX_ARTIFACT_BYTES" in too_big.json()["error"]["message"]

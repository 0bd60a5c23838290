"""The router's keys: /predict and /outcomes take the caller key alike (or an admin key), model
reads the read key when one is configured, registration only an admin key."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from splitlab.platform.settings import Settings
from splitlab_router.app import create_app
from tests.integration.router.conftest import (
    ADMIN,
    FEATURES,
    Setup,
    insert_experiment,
    register,
    wait_for_experiment,
)

CALLER_KEY = "router-caller-key-0123456789"
READ_KEY = "router-read-key-0123456789"
CALLER = {"Authorization": f"Bearer {CALLER_KEY}"}
READER = {"Authorization": f"Bearer {READ_KEY}"}
X = {"x1": 0.3, "x2": -1.2}


def test_production_paths_and_model_reads_take_their_keys(
    router_settings: Settings, engine: Engine, ab: Setup
) -> None:
    guarded = router_settings.model_copy(
        update={"assign_api_key": SecretStr(CALLER_KEY), "read_api_key": SecretStr(READ_KEY)}
    )
    with TestClient(create_app(guarded)) as router:
        register(router, ab.names["a"], "1", flavor="sklearn", artifact="a.skops")
        model = f"{ab.names['a']}:1"
        variants = [{"key": k, "weight": 0.5, "model": model} for k in ("control", "treatment")]
        insert_experiment(engine, ab.key, variants)
        wait_for_experiment(router, ab.key, X, CALLER)

        calls = [
            ("POST", "/predict", {"unit_id": "u1", "experiment_key": ab.key, "features": X}),
            ("POST", "/outcomes", {"unit_id": "u1", "outcome_type": "click", "value": 1.0}),
            ("GET", "/models", None),
            ("GET", f"/models/{ab.names['a']}/1", None),
        ]
        expected = {  # no key, read key, caller key, admin key
            "/predict": [401, 403, 200, 200],
            "/outcomes": [401, 403, 202, 202],
            "/models": [401, 200, 403, 200],
            f"/models/{ab.names['a']}/1": [401, 200, 403, 200],
        }
        for method, path, body in calls:
            codes = [
                router.request(method, path, json=body, headers=headers).status_code
                for headers in ({}, READER, CALLER, ADMIN)
            ]
            assert codes == expected[path], path

        body = {"name": "other", "version": "1", "flavor": "http",
                "url": "http://127.0.0.1:9/", "input_schema": FEATURES}  # fmt: skip
        for headers in (READER, CALLER):
            refused = router.post("/models", json=body, headers=headers)
            assert refused.status_code == 403
            assert "admin endpoints need an admin key" in refused.json()["error"]["message"]

"""Fixtures for the assignment service against the real stack."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from splitlab.platform.settings import NamedKey, Settings
from splitlab_assignment.app import create_app

ADMIN_KEY = "test-admin-key-0123456789"
ALICE_KEY = "test-alice-key-0123456789"
"""An admin key of its own, named ``alice@example.com`` (what the audit log says)."""


@pytest.fixture
def service_settings(settings: Settings, redis_client: redis.Redis) -> Settings:
    """The stack's test settings with an admin key (named ``admin``) and alice's; Redis db 15 is
    flushed around each test. Pre-flight checks are off: these tests run the assignment
    service alone (``test_preflight`` runs it with the analyzer and the router)."""
    return settings.model_copy(
        update={
            "admin_api_key": _secret(ADMIN_KEY),
            "api_keys": {"alice@example.com": NamedKey(key=_secret(ALICE_KEY), role="admin")},
            "preflight_checks": False,
        }
    )


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ALICE_KEY}"}


@pytest.fixture
def client(service_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(service_settings)) as test_client:
        yield test_client


@pytest.fixture
def new_key() -> Callable[[], str]:
    return lambda: f"exp-{uuid.uuid4().hex[:12]}"


def experiment_body(key: str, /, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key,
        "name": "Ranker v3",
        "hypothesis": "The new ranker raises conversion.",
        "owner": "search-team",
        "variants": [
            {"key": "control", "weight": 0.5, "model": "ranker:2"},
            {"key": "treatment", "weight": 0.5, "model": "ranker:3"},
        ],
        "metrics": {
            "primary": "conversion",
            "secondary": ["revenue"],
            "guardrails": [{"metric": "latency_p99", "margin": 0.05}],
        },
        "alpha": 0.05,
        "power": 0.8,
        "mde": 0.02,
    }
    body.update(overrides)
    return body

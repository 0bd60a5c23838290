from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from splitlab.platform.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_environment_variables_with_the_prefix_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLITLAB_REDIS_URL", "redis://cache.internal:6380/3")
    monkeypatch.setenv("SPLITLAB_MAX_BODY_BYTES", "2048")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.redis_url == "redis://cache.internal:6380/3"
    assert settings.max_body_bytes == 2048


def test_empty_api_key_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLITLAB_ASSIGN_API_KEY", "")
    assert Settings(_env_file=None).assign_api_key is None  # type: ignore[call-arg]


def test_a_non_postgres_database_url_is_refused_with_the_variable_name() -> None:
    with pytest.raises(ValidationError, match="SPLITLAB_DATABASE_URL"):
        Settings(database_url="sqlite:///x.db", _env_file=None)  # type: ignore[call-arg]


def test_every_setting_is_documented_in_env_example() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if line.startswith("SPLITLAB_")
    }
    fields = {f"SPLITLAB_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "document these in .env.example"


def test_env_example_loads_as_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SPLITLAB_"):
            monkeypatch.delenv(name)
    settings = Settings(_env_file=REPO / ".env.example")  # type: ignore[call-arg]
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.admin_api_key is not None

"""The README's architecture picture is generated: ``docs/architecture.py`` draws it from
``docker-compose.yml`` and the Prometheus configuration, and the committed PNG is what it draws
today (after a change to the compose file, run ``python docs/architecture.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[2]


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "docs" / "architecture.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_picture_names_every_compose_service_and_the_three_users(tmp_path: Path) -> None:
    architecture = script()
    labels = architecture.draw(tmp_path / "architecture.png")
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert set(services) <= set(labels)
    assert set(architecture.USERS) <= set(labels)


def test_the_committed_picture_is_what_the_script_draws(tmp_path: Path) -> None:
    script().draw(tmp_path / "architecture.png")
    fresh = (tmp_path / "architecture.png").read_bytes()
    committed = (ROOT / "docs" / "architecture.png").read_bytes()
    assert fresh == committed, "docs/architecture.png is stale: run python docs/architecture.py"


def test_a_new_compose_service_appears_in_the_picture(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose["services"]["exporter"] = {"image": "example/exporter:1", "ports": ["9200:9200"]}
    changed = tmp_path / "docker-compose.yml"
    changed.write_text(yaml.safe_dump(compose))
    labels = script().draw(tmp_path / "architecture.png", compose=changed)
    assert "exporter" in labels

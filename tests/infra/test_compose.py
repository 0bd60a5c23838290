"""docker-compose.yml is validated without an engine, and everything it names exists here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.stack import system_tool

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    binary = system_tool("docker-compose")
    result = subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_file_is_valid_and_has_every_part() -> None:
    services = compose()["services"]
    expected = {
        "redis", "postgres", "kafka", "prometheus", "alertmanager", "grafana", "migrate",
        "kafka-topics", "assignment", "router", "analyzer", "trainer", "trainer-worker",
        "trainer-beat",
    }  # fmt: skip
    assert expected <= set(services)


def test_every_app_service_runs_code_that_exists() -> None:
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        text = " ".join(command) if isinstance(command, list) else command
        for package in re.findall(r"(splitlab_[a-z]+)\.", text):
            folder = package.removeprefix("splitlab_")
            assert (REPO / "services" / folder / "src" / package).is_dir(), (name, package)
        if "build" in service:
            context = Path(service["build"]["context"])
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name


def test_every_mounted_file_exists() -> None:
    config = compose()
    named_volumes = set(config.get("volumes", {}))
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source not in named_volumes:
                assert Path(source).exists(), f"{name} mounts {source}, which is not in the repo"


def test_services_wait_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name in ("assignment", "router", "analyzer"):
        depends = services[name]["depends_on"]
        for dependency in ("redis", "postgres", "kafka"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)
            assert "healthcheck" in services[dependency], dependency
        assert depends["migrate"]["condition"] == "service_completed_successfully"

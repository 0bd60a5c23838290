"""The floors of docs/layout.md are held by import-linter (``make lint`` runs ``lint-imports``):
the real tree keeps every contract, and a forbidden import added to a copy of it breaks the
contract that forbids it, by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = {
    "splitlab": ROOT / "shared/src/splitlab",
    "splitlab_client": ROOT / "client/src/splitlab_client",
    "splitlab_router": ROOT / "services/router/src/splitlab_router",
}

FLOORS = "Floors: shell above platform above contracts above core"
PURE = "The pure floor imports no I/O library and no pydantic"
ANALYST = "Contracts and reports (the analyst's install) need no platform or client extra"
SERVICES = "The four services never import each other"
CLIENT = "The caller SDK (splitlab-client) imports nothing of splitlab or the services"
CONTRACTS = (FLOORS, PURE, ANALYST, SERVICES, CLIENT)


def lint_copy(tmp_path: Path, module: str = "", line: str = "") -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the project's contracts on a copy of the packages, with ``line``
    appended to ``module`` (a path under the copy's ``src/``); the copies come first on the path."""
    src = tmp_path / "src"
    for name, path in PACKAGES.items():
        shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if module:
        target = src / module
        target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_copy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "chain"),
    [
        (  # the reports reach power through the analysis' monitoring (power so far)
            "splitlab/core/stats/power.py",
            "import sqlalchemy",
            (PURE, ANALYST),
            "splitlab.core.stats.power -> sqlalchemy",
        ),
        (
            "splitlab/core/analysis/results.py",
            "from pydantic import BaseModel",
            PURE,
            "splitlab.core.analysis.results -> pydantic",
        ),
        (
            "splitlab/core/assignment/decision.py",
            "from splitlab.platform.errors import InvalidInputError",
            FLOORS,
            "splitlab.core.assignment.decision -> splitlab.platform.errors",
        ),
        (  # the break issue 15 found: the event contract importing messaging
            "splitlab/contracts/events.py",
            "from splitlab.platform.messaging.publisher import EventPublisher",
            (FLOORS, ANALYST),  # and with it prometheus_client, which the analyst has not
            "splitlab.contracts.events -> splitlab.platform.messaging.publisher",
        ),
        (  # the other one: the assignment runtime importing the web shell
            "splitlab/assigning/service.py",
            "from splitlab.web.error_handlers import install_error_handlers",
            FLOORS,
            "splitlab.assigning.service -> splitlab.web.error_handlers",
        ),
        (
            "splitlab/reports/numbers.py",
            "import yaml",
            ANALYST,
            "splitlab.reports.numbers -> yaml",
        ),
        (
            "splitlab_router/app.py",
            "import splitlab_analyzer.app",
            SERVICES,
            "splitlab_router.app -> splitlab_analyzer.app",
        ),
        (
            "splitlab_client/calls.py",
            "from splitlab.contracts.names import PATTERN_RULES",
            CLIENT,
            "splitlab_client.calls -> splitlab.contracts.names",
        ),
    ],
    ids=[
        "core-sqlalchemy",
        "core-pydantic",
        "core-platform",
        "contracts-messaging",
        "runtime-web",
        "reports-yaml",
        "service-service",
        "client-splitlab",
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str | tuple[str, ...], chain: str
) -> None:
    result = lint_copy(tmp_path, module, line)
    assert result.returncode == 1, result.stdout + result.stderr
    assert chain in result.stdout
    expected = (contract,) if isinstance(contract, str) else contract
    broken = tuple(name for name in CONTRACTS if f"{name} BROKEN" in result.stdout)
    assert broken == expected

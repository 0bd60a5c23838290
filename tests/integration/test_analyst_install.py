"""The analyst's install: the ``splitlab`` wheel in a fresh venv has none of the server stack and
analyses a file; the caller SDK's wheel installs without ``splitlab``.

The wheels are built from this tree (``uv build``) and installed with ``uv pip`` into venvs of
their own, pinned to ``uv.lock``'s versions (``uv export``), so the dependencies come from uv's
cache when it is warm and from PyPI otherwise (hence integration: it may need the network).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_STACK = ("fastapi", "starlette", "sqlalchemy", "redis", "kafka", "confluent_kafka")
PLATFORM_ONLY = (*SERVER_STACK, "alembic", "psycopg2", "prometheus_client", "pythonjsonlogger")


def uv_command() -> list[str]:
    """``python3 -m uv``, as the Makefile runs it: the system python3, not this venv's."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    python3 = shutil.which("python3", path=path)
    assert python3 is not None, "no python3 outside the venv (make install puts uv there)"
    return [python3, "-m", "uv"]


def uv(*args: str, cwd: Path = ROOT) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run(
        [*uv_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass(frozen=True)
class Wheels:
    splitlab: Path
    client: Path
    constraints: Path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    out = tmp_path_factory.mktemp("wheels")
    uv("build", "--wheel", "shared", "--out-dir", str(out))
    uv("build", "--wheel", "client", "--out-dir", str(out))
    constraints = out / "constraints.txt"
    uv(
        "export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-workspace",
        "--package", "splitlab", "--extra", "client", "--quiet", "--output-file", str(constraints),
    )  # fmt: skip
    return Wheels(
        splitlab=next(out.glob("splitlab-*.whl")),
        client=next(out.glob("splitlab_client-*.whl")),
        constraints=constraints,
    )


def fresh_venv(where: Path, *requirements: str, constraints: Path) -> Path:
    """A new venv at ``where`` with only ``requirements`` (and their dependencies); its python."""
    uv("venv", str(where), "--python", "python3.11", "--quiet")
    python = where / "bin" / "python"
    uv("pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), *requirements)
    return python


def importable(python: Path, modules: tuple[str, ...]) -> list[str]:
    code = (
        "import importlib.util, json, sys; "
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *modules], capture_output=True, text=True, check=True
    )
    found: list[str] = json.loads(done.stdout)
    return found


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python.parent / "splitlab"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_pip_install_splitlab_analyses_a_file_without_the_server_stack(
    wheels: Wheels, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv", str(wheels.splitlab), constraints=wheels.constraints)
    assert importable(python, (*PLATFORM_ONLY, "httpx", "pydantic_settings", "yaml")) == []

    rng = np.random.default_rng(15)
    n = 600
    variant = rng.choice(["control", "treatment"], n)
    pre = rng.normal(10, 2, n)
    revenue = pre + rng.normal(0, 1, n) + 0.5 * (variant == "treatment")
    pd.DataFrame({"variant": variant, "revenue": revenue, "revenue_pre": pre}).to_csv(
        tmp_path / "exp.csv", index=False
    )
    args = ("analyze", "exp.csv", "--metric", "revenue", "--covariate", "revenue_pre")
    done = run(python, *args, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"]["total"] == n
    comparison = result["metrics"]["revenue"]["comparisons"]["treatment"]
    assert comparison["ci_lower"] < 0.5 < comparison["ci_upper"]

    # The holdout's impact from a daily file: no server, no extra.
    days = np.repeat(["2026-11-01", "2026-11-02"], n)
    pd.DataFrame(
        {"unit_id": np.tile(np.arange(n), 2), "day": days, "revenue": np.tile(revenue, 2),
         "holdout": np.tile(np.arange(n) % 10 == 0, 2)}
    ).to_csv(tmp_path / "daily.csv", index=False)  # fmt: skip
    impact = ("holdout", "impact", "--file", "daily.csv", "--metric", "revenue")
    done = run(python, *impact, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [d["n_holdout"] for d in json.loads(done.stdout)["days"]] == [60, 60]
    done = run(python, "holdout", "impact", "--metric", "revenue", cwd=tmp_path)
    assert done.returncode == 1
    assert "needs the splitlab[client] extra" in done.stderr

    done = run(python, "experiments", "list", cwd=tmp_path)
    assert done.returncode == 1
    assert "needs the splitlab[client] extra" in done.stderr
    assert "pip install 'splitlab[client]'" in done.stderr
    done = run(python, "db", "upgrade", cwd=tmp_path)
    assert done.returncode == 1
    assert "pip install 'splitlab[platform]'" in done.stderr


def test_the_client_extra_adds_the_sdk_and_still_no_server_stack(
    wheels: Wheels, tmp_path: Path
) -> None:
    python = fresh_venv(
        tmp_path / "venv",
        f"{wheels.splitlab}[client]",
        str(wheels.client),
        constraints=wheels.constraints,
    )
    assert importable(python, ("splitlab_client", "httpx", "pydantic_settings", "yaml")) == [
        "splitlab_client",
        "httpx",
        "pydantic_settings",
        "yaml",
    ]
    assert importable(python, PLATFORM_ONLY) == []
    # Past the extra check: the command now asks the (absent) assignment service.
    env_port = {"SPLITLAB_ASSIGNMENT_URL": "http://127.0.0.1:9", "SPLITLAB_ADMIN_API_KEY": "k"}
    done = subprocess.run(
        [str(python.parent / "splitlab"), "experiments", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env_port, "COLUMNS": "200"},
    )
    assert done.returncode == 1
    assert "extra" not in done.stderr
    assert "cannot reach the assignment service at http://127.0.0.1:9" in done.stderr


def test_the_client_sdk_installs_alone(wheels: Wheels, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv", str(wheels.client), constraints=wheels.constraints)
    assert importable(python, ("splitlab_client", "httpx")) == ["splitlab_client", "httpx"]
    assert importable(python, ("splitlab", "numpy", "pydantic", *SERVER_STACK)) == []
    done = subprocess.run(
        [str(python), "-c", "import splitlab_client; print(sorted(splitlab_client.__all__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "SplitLabClient" in done.stdout

"""Commands that need an extra say so when it is missing; the file commands need none.

A missing package is simulated with ``sys.modules[name] = None``: ``import name`` then raises
``ModuleNotFoundError`` and ``importlib.util.find_spec(name)`` answers None, as in an install
without the extra. The real analyst's install is checked in
``tests/integration/test_analyst_install.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.cli.extras import EXTRA_MODULES

runner = CliRunner()

CLIENT_COMMANDS = [
    ["experiments", "list"],
    ["experiments", "pause", "ranker-v3"],
    ["models", "list"],
    ["metrics", "list"],
    ["features", "load", __file__],
    ["results", "demo"],
    ["analyzer-actions", "demo"],
    ["training", "list"],
    ["ready", "--timeout", "1"],
    ["simulate", "-e", "demo", "--users", "1"],
]
PLATFORM_COMMANDS = [["db", "upgrade"], ["kafka", "create-topics"], ["demo"]]


def _block(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("args", CLIENT_COMMANDS, ids=" ".join)
def test_server_commands_name_the_client_extra(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    _block(monkeypatch, "httpx", "pydantic_settings")
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "this command needs the splitlab[client] extra (missing: httpx, pydantic_settings); "
        "install it with: pip install 'splitlab[client]'"
    ]


@pytest.mark.parametrize("args", PLATFORM_COMMANDS, ids=" ".join)
def test_platform_commands_name_the_platform_extra(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    _block(monkeypatch, "sqlalchemy", "kafka")
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 1, result.output
    assert "needs the splitlab[platform] extra (missing: sqlalchemy, kafka)" in result.stderr
    assert "pip install 'splitlab[platform]'" in result.stderr


def test_help_works_without_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, *EXTRA_MODULES["platform"], *EXTRA_MODULES["client"])
    for args in (["--help"], ["experiments", "list", "--help"], ["db", "upgrade", "--help"]):
        result = runner.invoke(build_app(), args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.stdout


def test_file_commands_need_no_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _block(monkeypatch, *EXTRA_MODULES["platform"], *EXTRA_MODULES["client"])
    rng = np.random.default_rng(3)
    n = 400
    variant = rng.choice(["control", "treatment"], n)
    frame = pd.DataFrame(
        {"variant": variant, "revenue": rng.normal(size=n) + 0.2 * (variant == "treatment")}
    )
    path = tmp_path / "exp.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(build_app(), ["analyze", str(path), "--metric", "revenue"])
    assert result.exit_code == 0, result.output
    assert "revenue" in result.stdout
    result = runner.invoke(
        build_app(), ["power", "--metric-type", "proportion", "--baseline", "0.1", "--mde", "0.01"]
    )
    assert result.exit_code == 0, result.output

"""``python -m splitlab`` is the ``splitlab`` command."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_splitlab_is_the_splitlab_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "splitlab", "--help"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "python -m splitlab" in result.stdout
    for command in ("analyze", "power", "synth", "experiments"):
        assert command in result.stdout

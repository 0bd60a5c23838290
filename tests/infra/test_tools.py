"""The one list of system tools (infra/tools.txt) names every tool the project calls, and
``make doctor`` reports each of them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def listed_tools() -> dict[str, str]:
    """command -> Debian package, as infra/tools.sh reads them."""
    tools: dict[str, str] = {}
    for line in (REPO / "infra" / "tools.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            command, package = line.split()[:2]
            tools[Path(command).name] = package
    return tools


CALLED_IN_PYTHON = re.compile(
    r"""(?:system_tool|shutil\.which)\(\s*["']([\w.+-]+)["']"""
    r"""|subprocess\.(?:run|Popen|check_output|check_call)\(\s*\[\s*["']([\w.+-]+)["']"""
)
CALLED_IN_SHELL = re.compile(r"command -v ([\w.+-]+)")
# Commands every Debian machine has (coreutils, bash) or that the Python environment provides.
ALWAYS_THERE = {"bash", "sh", "kill", "python3", "sha256sum", "md5sum", "apt-get"}


def called_tools() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in ("tests", "bench", "studies", "infra"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix == ".py":
                names = [a or b for a, b in CALLED_IN_PYTHON.findall(path.read_text())]
            elif path.suffix == ".sh":
                names = CALLED_IN_SHELL.findall(path.read_text())
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_tool_the_project_calls_is_in_the_one_list() -> None:
    listed = set(listed_tools())
    unlisted = {
        name: sorted(places)
        for name, places in called_tools().items()
        if name not in listed and name not in ALWAYS_THERE
    }
    assert not unlisted, f"add these to infra/tools.txt: {unlisted}"


def test_the_list_knows_the_tools_that_were_missing_on_a_new_machine() -> None:
    tools = listed_tools()
    assert tools["docker-compose"] == "docker-compose"
    assert tools["promtool"] == tools["prometheus"] == "prometheus"
    assert tools["amtool"] == "prometheus-alertmanager"
    assert tools["cc"] == "gcc"
    assert tools["wrk"] == "wrk"


def test_doctor_reports_every_tool_with_a_version() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "infra" / "tools.sh"), "check"],
        capture_output=True, text=True, check=False, cwd=REPO, timeout=120,
    )  # fmt: skip
    tools, python, services = (
        {line.split()[0]: line for line in section.splitlines()[1:]}
        for section in result.stdout.split("\n\n")[:3]
    )
    for tool in listed_tools():
        assert tool in tools, f"make doctor does not report {tool}"
        assert " ok " in tools[tool] or "apt-get install -y" in tools[tool], tools[tool]
    assert "uv" in python
    assert ".venv" in python
    for service in ("redis", "postgres", "kafka", "prometheus", "alertmanager", "analyzer"):
        assert service in services
    # Under make test every tool has been installed first, so the doctor is content.
    assert result.returncode == 0, result.stdout
    assert "every tool is installed" in result.stdout

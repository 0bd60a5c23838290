"""The API docs render in a browser with no network but the service's own: headless Chromium
loads ``/docs`` and ``/redoc`` of a real service, every other host unresolvable, and the pages
show the service's operations (FastAPI's default pages, which load Swagger UI and ReDoc from a
CDN, stay blank here)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from splitlab.platform.settings import Settings
from splitlab_assignment.app import create_app
from tests.support.served import served

CHROMIUM = shutil.which("chromium")


@pytest.fixture
def assignment_url(settings: Settings) -> Iterator[str]:
    with served(create_app(settings)) as url:
        yield url


def rendered(url: str) -> str:
    """The page's DOM after its scripts ran, with only 127.0.0.1 reachable."""
    assert CHROMIUM, "chromium is missing: make tools installs it (infra/tools.txt)"
    run = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_swagger_ui_shows_the_operations_offline(assignment_url: str) -> None:
    dom = rendered(f"{assignment_url}/docs")
    for path in ("/assign", "/assign/batch", "/experiments/{key}"):
        assert f'data-path="{path}"' in dom, f"Swagger UI did not render {path}"


def test_redoc_shows_the_operations_offline(assignment_url: str) -> None:
    dom = rendered(f"{assignment_url}/redoc")
    assert "api-content" in dom, "ReDoc did not render"
    assert "/assign/batch" in dom

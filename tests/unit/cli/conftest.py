"""Fixtures of the command tests."""

from __future__ import annotations

import pytest

from tests.support.fake_services import FakeServices, install


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> FakeServices:
    """A faked assignment service, router and analyzer the commands talk to."""
    return install(monkeypatch)

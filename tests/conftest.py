"""Suite-wide configuration: tests under tests/integration and tests/infra are marked
``integration`` (they need the native stack or its binaries) so ``make test-unit`` can skip them."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(TESTS).parts
        if parts and parts[0] in ("integration", "infra"):
            item.add_marker(pytest.mark.integration)

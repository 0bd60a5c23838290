"""``docs/`` stands alone: it cites no document outside the repository, and every file it names
by path exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
OUTSIDE = re.compile(
    r"ARCHITECTURE\.md|STYLE\.md|FIELD_NOTES\.md|(?i:\bthe issue\b|\bissue #?\d+|\bthe brief\b)"
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NAMED_PATH = re.compile(r"`((?:docs|bench|infra|shared|services|tests|examples|studies)/[\w./-]+)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_cites_no_document_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert OUTSIDE.findall(text) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_a_page_names_exists(page: Path) -> None:
    text = page.read_text()
    links = [t for t in LINK.findall(text) if "://" not in t]
    missing = [t for t in links if not (page.parent / t).exists()]
    missing += [
        p for p in NAMED_PATH.findall(text) if "*" not in p and not (ROOT / p.rstrip(".")).exists()
    ]
    assert missing == []

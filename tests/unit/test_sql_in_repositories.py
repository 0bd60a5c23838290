"""All SQL sits in repositories (docs/layout.md): a scan of ``services/*/src`` and ``shared/src``
finds no SQL outside repository modules (a module named ``repository.py``, or one inside a
package named ``repository``) and the Alembic migrations; SQL planted in a copy of the tree is
reported with its file and line."""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services/*/src", "shared/src")
REPOSITORY = "repository"
MIGRATIONS = "migrations"
ALLOWED: dict[str, str] = {
    "shared/src/splitlab/platform/health.py": (
        "the readiness probe's `SELECT 1` is the ping itself (no table, no data), beside the "
        "Redis PING and the Kafka metadata request of the same checks"
    ),
}
"""Modules that may hold SQL without being a repository, each with its reason."""

STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|COPY|CREATE|SET|ANALYZE)\s")
BUILDERS = frozenset({"text", "select", "update", "insert", "delete"})
EXECUTORS = frozenset({"execute", "executemany", "exec_driver_sql", "copy", "copy_expert"})
SCHEMA_FRAGMENTS = frozenset({"server_default", "server_onupdate", "postgresql_where"})
"""Keywords of the ORM schema (storage/models.py) whose ``text()`` is a DDL fragment (a column
default, a partial index's predicate), not a statement."""


def sql_in(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each piece of SQL in ``source``: a sqlalchemy statement builder
    (``text``/``select``/``update``/``insert``/``delete``), an ``execute``/``copy`` of a cursor
    or connection given a statement, or a string literal that starts with a SQL keyword."""
    tree = ast.parse(source)
    builders: set[str] = set()  # local names bound to sqlalchemy builders
    modules: set[str] = set()  # local names bound to sqlalchemy (sub)modules
    skipped: set[int] = set()  # docstrings and schema fragments
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            builders.update(a.asname or a.name for a in node.names if a.name in BUILDERS)
        elif isinstance(node, ast.Import):
            modules.update(
                a.asname or a.name.split(".")[0]
                for a in node.names
                if a.name.startswith("sqlalchemy")
            )
        elif isinstance(node, ast.keyword) and node.arg in SCHEMA_FRAGMENTS:
            skipped.add(id(node.value))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in builders:
                yield node.lineno, f"sqlalchemy {func.id}()"
            elif isinstance(func, ast.Attribute):
                base = func.value
                if func.attr in BUILDERS and isinstance(base, ast.Name) and base.id in modules:
                    yield node.lineno, f"sqlalchemy {func.attr}()"
                elif func.attr in EXECUTORS and node.args:
                    yield node.lineno, f".{func.attr}() of a statement"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and STATEMENT.match(node.value)
        ):
            yield node.lineno, f"SQL string {node.value.split()[0]}"


def is_repository(path: Path) -> bool:
    """A module named ``repository.py``, or one inside a package named ``repository``."""
    return path.stem == REPOSITORY or REPOSITORY in path.parent.parts


def violations(root: Path) -> list[str]:
    """``path:line: what`` for each piece of SQL under ``root`` outside a repository."""
    found = []
    for pattern in SCANNED:
        for path in sorted(root.glob(f"{pattern}/**/*.py")):
            relative = path.relative_to(root).as_posix()
            if is_repository(path) or MIGRATIONS in path.parts or relative in ALLOWED:
                continue
            for line, what in sorted(sql_in(path.read_text())):
                found.append(f"{relative}:{line}: {what}")
    return found


def test_no_sql_outside_repositories() -> None:
    found = violations(ROOT)
    assert not found, (
        "SQL outside a repository module: move the statement into the repository.py (or the "
        "repository/ package) of its service or subpackage, and call it from here:\n"
        + "\n".join(found)
    )


def test_every_allowed_module_holds_sql() -> None:
    """An allow-list entry whose SQL has gone is removed, so the list stays honest."""
    for relative in ALLOWED:
        assert list(sql_in((ROOT / relative).read_text())), f"{relative} holds no SQL: unlist it"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the scanned sources (a planted line changes the copy only)."""
    for folder in ("services", "shared"):
        shutil.copytree(
            ROOT / folder,
            tmp_path / folder,
            ignore=shutil.ignore_patterns("__pycache__", "tests", "*.pyc", "*.js", "*.css"),
        )
    return tmp_path


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        (
            "services/analyzer/src/splitlab_analyzer/rollups/store.py",
            'from sqlalchemy import text\nSTALE = text("DELETE FROM rollup_backlog")',
            [(1, "SQL string DELETE"), (1, "sqlalchemy text()")],
        ),
        (
            "services/trainer/src/splitlab_trainer/planner.py",
            "import sqlalchemy as sa\nQUEUED = sa.select(1)",
            [(1, "sqlalchemy select()")],
        ),
        (
            "services/analyzer/src/splitlab_analyzer/consumer/sink.py",
            "def truncate(cursor):\n    cursor.execute(TRUNCATE)",
            [(1, ".execute() of a statement")],
        ),
        (
            "shared/src/splitlab/assigning/loading.py",
            'KEYS = """\n    SELECT key FROM experiments"""',
            [(0, "SQL string SELECT")],
        ),
        (
            "services/router/src/splitlab_router/service/serving.py",
            'BACKLOG = f"WITH b AS (SELECT 1) SELECT * FROM {TABLE}"',
            [(0, "SQL string WITH")],
        ),
    ],
    ids=["text", "module-select", "cursor-execute", "string", "f-string"],
)
def test_planted_sql_is_reported_with_file_and_line(
    tree: Path, module: str, planted: str, expected: list[tuple[int, str]]
) -> None:
    """``expected``: (line within ``planted``, what) of each report."""
    assert violations(tree) == []
    target = tree / module
    source = target.read_text()
    target.write_text(f"{source}\n{planted}\n")
    first = source.count("\n") + 2  # the planted text's first line
    assert violations(tree) == [f"{module}:{first + at}: {what}" for at, what in expected]


def test_a_repository_module_and_the_schema_may_hold_sql(tree: Path) -> None:
    repository = tree / "services/router/src/splitlab_router/repository.py"
    repository.write_text(repository.read_text() + '\nKEYS = text("SELECT 1")\n')
    models = tree / "shared/src/splitlab/platform/storage/models.py"
    assert "server_default=text(" in models.read_text()
    assert violations(tree) == []

"""All SQL sits in repositories (docs/layout.md): a scan of ``services/*/src`` and ``shared/src``
finds no SQL statement outside modules named ``repository.py`` (and the Alembic migrations), and
a statement planted in a copy of the tree is reported with its file and line."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (
    "services/analyzer/src",
    "services/assignment/src",
    "services/router/src",
    "services/trainer/src",
    "shared/src",
)
REPOSITORY = "repository.py"
MIGRATIONS = "migrations"
# Modules that may ask Postgres without being a repository, each with its reason.
ALLOWED: dict[str, str] = {}

STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|COPY|CREATE|SET|ANALYZE)\s", re.ASCII)
BUILDERS = frozenset({"text", "select", "update", "insert", "delete"})
EXECUTORS = frozenset({"execute", "executemany", "exec_driver_sql", "copy", "copy_expert"})


def sql_in(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each SQL statement in ``source``: a sqlalchemy statement builder
    (``text``/``select``/``update``/``insert``/``delete``), a cursor or session ``execute``/
    ``copy`` given a statement, or a string literal that starts with a SQL keyword."""
    tree = ast.parse(source)
    builders: set[str] = set()  # local names bound to sqlalchemy builders
    modules: set[str] = set()  # local names bound to sqlalchemy (sub)modules
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            builders.update(a.asname or a.name for a in node.names if a.name in BUILDERS)
        elif isinstance(node, ast.Import):
            modules.update(
                a.asname or a.name.split(".")[0]
                for a in node.names
                if a.name.startswith("sqlalchemy")
            )
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
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
            and id(node) not in docstrings
            and STATEMENT.match(node.value)
        ):
            yield node.lineno, f"SQL string {node.value.strip().split()[0]}"


def is_repository(path: Path) -> bool:
    """A module named ``repository.py``, or one inside a package named ``repository``."""
    return path.name == REPOSITORY or REPOSITORY.removesuffix(".py") in path.parent.parts


def violations(root: Path) -> list[str]:
    """``path:line: what`` for each SQL statement under ``root`` outside a repository."""
    found = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if is_repository(path) or MIGRATIONS in path.parts or relative in ALLOWED:
                continue
            for line, what in sql_in(path.read_text()):
                found.append(f"{relative}:{line}: {what}")
    return found


def test_no_sql_outside_repositories() -> None:
    found = violations(ROOT)
    assert not found, "SQL outside a repository.py (move it into the service's repository):\n" + (
        "\n".join(found)
    )


def test_every_allowed_module_exists_and_holds_sql() -> None:
    for relative in ALLOWED:
        assert list(sql_in((ROOT / relative).read_text())), f"{relative} holds no SQL: unlist it"

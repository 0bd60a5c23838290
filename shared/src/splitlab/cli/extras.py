"""The extras a command needs beyond ``pip install splitlab``, checked before it runs.

``pip install splitlab`` is the analyst's install: ``analyze``, ``power`` and ``synth`` run on
files with nothing else. The commands that talk to a running SplitLab need the ``client`` extra
(the caller SDK's distribution, which brings httpx; the settings that locate the services; YAML
experiment files); those that act on Postgres or Kafka, or set up the demo on this machine, need
the ``platform`` extra. Without it a command says so in one line, naming the extra and the
command that installs it, instead of failing with a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import typer

from splitlab.cli.output import stderr_console

Extra = Literal["platform", "client"]

EXTRA_MODULES: dict[Extra, tuple[str, ...]] = {
    "client": ("httpx", "pydantic_settings", "yaml"),
    "platform": (
        "httpx",
        "pydantic_settings",
        "yaml",
        "sqlalchemy",
        "alembic",
        "psycopg2",
        "redis",
        "kafka",
        "skops",
    ),
}
"""The modules each extra installs that the commands import (checked, not imported)."""

F = TypeVar("F", bound=Callable[..., Any])


def missing_modules(extra: Extra) -> list[str]:
    """The modules of ``extra`` this interpreter cannot import."""
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def missing_extra_message(extra: Extra, missing: list[str]) -> str:
    return (
        f"this command needs the splitlab[{extra}] extra (missing: {', '.join(missing)}); "
        f"install it with: pip install 'splitlab[{extra}]'"
    )


def requires(extra: Extra) -> Callable[[F], F]:
    """Decorate a command: exit 1 with one line naming ``extra`` when its modules are missing.

    ``--help`` still works without the extra: Click answers it before the command runs.
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def checked(*args: Any, **kwargs: Any) -> Any:
            missing = missing_modules(extra)
            if missing:
                stderr_console().print(
                    missing_extra_message(extra, missing),
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
                raise typer.Exit(1)
            return command(*args, **kwargs)

        return cast(F, checked)

    return decorate

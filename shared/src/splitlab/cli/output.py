"""Where the commands write: tables on stdout at full width, messages on stderr.

rich assumes 80 columns when stdout is not a terminal and then shortens cells with an
ellipsis, so ``splitlab experiments list | grep`` or ``> file`` lost the end of long keys and
values. On a terminal the tables fit the window; anywhere else they get as wide as their
content (``PIPED_WIDTH`` is only an upper bound: tables do not expand to it).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

PIPED_WIDTH = 10_000
"""Console width when stdout is not a terminal: wider than any table we print."""


def stdout_console() -> Console:
    """A console on stdout: the terminal's width, or unbounded when piped or redirected."""
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def stderr_console() -> Console:
    """A console on stderr, for progress and messages that must not mix into piped output."""
    return Console(stderr=True)


def emit(text: str, output: Path | None) -> None:
    """Write a document (JSON, HTML) to ``output``, or to stdout with nothing else on it; the
    "wrote" note goes to stderr."""
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:  # a missing folder, a directory, no permission: once a traceback
        reason = exc.strerror or type(exc).__name__
        typer.echo(
            f"error: --output: cannot write {output} ({reason}); pass a file path in a folder "
            "that exists and you can write to",
            err=True,
        )
        raise typer.Exit(code=2) from None
    typer.echo(f"wrote {output}", err=True)


def usage_error(message: str) -> typer.Exit:
    """Say ``error: message`` on stderr; the exit (code 2, a usage error) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)

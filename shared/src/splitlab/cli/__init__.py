"""The ``splitlab`` command line.

Each command family lives in its own module of this package and exposes
``register(app: typer.Typer) -> None``; this module only assembles them. Heavy imports
(numpy, pandas, HTTP clients) happen inside the commands, so ``splitlab --help`` is fast.
"""

from __future__ import annotations

import importlib

import typer

# Modules that contribute commands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "splitlab.cli.infra",
    "splitlab.cli.synth",
    "splitlab.cli.analyze",
    "splitlab.cli.experiments",
    "splitlab.cli.models",
    "splitlab.cli.metrics",
    "splitlab.cli.holdout",
    "splitlab.cli.training",
    "splitlab.cli.simulate",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="splitlab",
        help="SplitLab: experimentation for machine-learning models. "
        "Example: splitlab experiments list (every command's --help has one).",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)
    return app


def main() -> None:
    build_app()()

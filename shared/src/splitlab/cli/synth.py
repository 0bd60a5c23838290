"""``splitlab synth``: a synthetic control analysis of a CSV or Parquet panel."""

from __future__ import annotations

import io
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from splitlab.cli.files import read_table
from splitlab.cli.output import emit, usage_error

if TYPE_CHECKING:
    pass


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


class Method(StrEnum):
    auto = "auto"
    classic = "classic"
    augmented = "augmented"
    forecast = "forecast"


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth(
        file: Annotated[
            Path, typer.Argument(help="Panel (CSV or Parquet), a row per unit and period.")
        ],
        unit: Annotated[str, typer.Option("--unit", help="Unit column, e.g. region.")],
        time: Annotated[str, typer.Option("--time", help="Period column: numbers or ISO dates.")],
        outcome: Annotated[str, typer.Option("--outcome", help="Outcome column.")],
        treated: Annotated[list[str], typer.Option("--treated", help="Treated unit (repeatable).")],
        start: Annotated[str, typer.Option("--start", help="Intervention: first treated period.")],
        method: Annotated[Method, typer.Option("--method", help="Counterfactual method.")] = (
            Method.auto
        ),
        output_format: Annotated[OutputFormat, typer.Option("--format", help="Output.")] = (
            OutputFormat.table
        ),
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write to this file.")
        ] = None,
        drop_incomplete: Annotated[
            bool, typer.Option("--drop-incomplete", help="Drop donor units with missing cells.")
        ] = False,
        alpha: Annotated[float, typer.Option("--alpha", help="1 - the interval's level.")] = 0.05,
        no_placebo: Annotated[
            bool, typer.Option("--no-placebo", help="Skip placebo inference.")
        ] = False,
    ) -> None:
        """Estimate the effect of an intervention on the treated unit from untreated donors.

        Example: splitlab synth panel.csv --unit region --time week --outcome revenue --treated
        north --start 2026-03-02
        """
        import warnings

        from splitlab.core.synth import synthetic_control

        try:
            data = read_table(file)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # library warnings are in the result's notes
                result = synthetic_control(
                    data,
                    unit_col=unit,
                    time_col=time,
                    outcome_col=outcome,
                    treated=treated[0] if len(treated) == 1 else treated,
                    intervention_time=start,
                    method=method.value,
                    placebo=not no_placebo,
                    alpha=alpha,
                    drop_incomplete=drop_incomplete,
                )
        except ValueError as exc:
            message = str(exc).replace("drop_incomplete=True", "--drop-incomplete")
            raise usage_error(_cli_names(message)) from None

        if output_format is OutputFormat.json:
            text = json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"
        elif output_format is OutputFormat.html:
            from splitlab.reports.synth import html_report

            text = html_report(result)
        else:
            from splitlab.reports.synth import summary_table

            if output is None:
                Console(width=120).print(summary_table(result))
                return
            console = Console(record=True, width=120, file=io.StringIO())
            console.print(summary_table(result))
            text = console.export_text()
        if output is None:
            typer.echo(text, nl=False)
        else:
            emit(text, output)


_OPTION_NAMES = {
    "unit_col:": "--unit:",
    "time_col:": "--time:",
    "outcome_col:": "--outcome:",
    "treated:": "--treated:",
    "intervention_time:": "--start:",
    "alpha:": "--alpha:",
    "method:": "--method:",
}


def _cli_names(message: str) -> str:
    """Name the command-line option instead of the Python argument."""
    for python_name, option in _OPTION_NAMES.items():
        if message.startswith(python_name):
            return option + message[len(python_name) :]
    return message

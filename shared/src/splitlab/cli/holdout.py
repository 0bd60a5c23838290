"""``splitlab holdout impact``: the global holdout against everyone else, per day, as a table,
JSON or the HTML report: from the analyzer's ``GET /holdout/impact``, or from a file with no
server (``--file``: one row per unit and day, computed by
:func:`splitlab.core.analysis.holdout.holdout_impact`, the function the analyzer feeds)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from splitlab.cli.extras import missing_extra_message, missing_modules
from splitlab.cli.files import read_table
from splitlab.cli.output import emit, stdout_console, usage_error


class HoldoutFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


# The library's closed set (HOLDOUT_AGGREGATIONS; tests/unit/cli/test_holdout_cli.py checks it).
class HoldoutAggregation(StrEnum):
    sum = "sum"
    any = "any"
    mean = "mean"


FILE_ONLY = ("--unit-col", "--day-col", "--holdout-col", "--count-col", "--aggregation")


def argument_problem(metrics: list[str], days: int | None, alpha: float) -> str | None:
    """What is wrong with the options, naming the option and the fix; None when they are fine.
    (The analyzer answers the same with a 422, which the CLI once passed on with exit 1, and
    for ``--alpha nan`` as 'Input should be less than 1'.)"""
    from splitlab.core.analysis.holdout import MAX_DAYS
    from splitlab.core.stats.comparison import check_alpha

    for metric in metrics:
        if not metric.strip():
            return "--metric must name a plain outcome metric, e.g. --metric revenue; got ''"
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        return f"--metric names each metric once; repeated: {', '.join(repeated)}"
    if days is not None and not 1 <= days <= MAX_DAYS:
        return f"--days must be between 1 and {MAX_DAYS}; got {days}"
    try:
        check_alpha(alpha, "--alpha")
    except ValueError as exc:
        return str(exc)
    return None


def register(app: typer.Typer) -> None:
    holdout = typer.Typer(
        help="The global holdout. Example: splitlab holdout impact --metric revenue",
        no_args_is_help=True,
    )
    app.add_typer(holdout, name="holdout")

    @holdout.command("impact")
    def impact(
        metrics: Annotated[
            list[str],
            typer.Option(
                "--metric",
                help="A plain outcome metric (with --file: a value column); repeat for several.",
            ),
        ],
        days: Annotated[
            int | None, typer.Option("--days", help="Days back from now (1-366; default 28).")
        ] = None,
        alpha: Annotated[float, typer.Option("--alpha")] = 0.05,
        sequential: Annotated[
            bool, typer.Option("--sequential", help="Always-valid intervals.")
        ] = False,
        output_format: Annotated[HoldoutFormat, typer.Option("--format")] = HoldoutFormat.table,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
        file: Annotated[
            Path | None,
            typer.Option(
                "--file", help="CSV or Parquet, one row per unit and day: no server needed."
            ),
        ] = None,
        unit_col: Annotated[str | None, typer.Option("--unit-col", help="Default unit_id.")] = None,
        day_col: Annotated[str | None, typer.Option("--day-col", help="Default day.")] = None,
        holdout_col: Annotated[
            str | None,
            typer.Option("--holdout-col", help="True/1 for the holdout's units. Default holdout."),
        ] = None,
        count_col: Annotated[
            str | None,
            typer.Option("--count-col", help="Events per row (required with --aggregation mean)."),
        ] = None,
        aggregation: Annotated[
            HoldoutAggregation | None,
            typer.Option("--aggregation", help="A unit's value up to each day. Default sum."),
        ] = None,
    ) -> None:
        """The cumulative effect of all launched changes on a metric, day by day: everyone
        outside the global holdout minus the holdout, with its CI.

        From the analyzer (its metric definitions and events), or with --file from a table of
        your own with a row per unit and day (columns --unit-col, --day-col, --holdout-col and
        each --metric; --days does not apply: every row of the file is used).

        Several --metric options give a table (HTML: a section) per metric; with
        --format json, one metric prints its answer and several a list of them.

        Example: splitlab holdout impact --metric revenue --days 14 --format html -o h.html
        Example: splitlab holdout impact --file daily.csv --metric revenue --metric orders
        """
        problem = argument_problem(metrics, days, alpha)
        if problem is None and file is not None and days is not None:
            problem = "--days selects the analyzer's window; with --file every row is used"
        given = (unit_col, day_col, holdout_col, count_col, aggregation)
        if problem is None and file is None and any(v is not None for v in given):
            named = [o for o, v in zip(FILE_ONLY, given, strict=True) if v is not None]
            problem = f"{', '.join(named)} only apply with --file; give --file or drop them"
        if problem is not None:  # before any request: a usage error, as in `splitlab power`
            raise usage_error(problem)
        if file is None:
            bodies = _from_analyzer(metrics, days or 28, alpha, sequential)
        else:
            bodies = _from_file(
                file,
                metrics,
                unit_col or "unit_id",
                day_col or "day",
                holdout_col or "holdout",
                count_col,
                (aggregation or HoldoutAggregation.sum).value,
                alpha,
                sequential,
            )
        if output_format is HoldoutFormat.json:
            shown = bodies[0] if len(bodies) == 1 else bodies
            emit(json.dumps(shown, indent=2) + "\n", output)
            return
        if output_format is HoldoutFormat.html:
            from splitlab.reports.holdout import holdout_html

            title = f"SplitLab holdout impact: {', '.join(metrics)}"
            emit(holdout_html(bodies, title=title), output)
            return
        from splitlab.reports.holdout import holdout_table

        for body in bodies:
            stdout_console().print(holdout_table(body))


def _from_analyzer(
    metrics: list[str], days: int, alpha: float, sequential: bool
) -> list[dict[str, Any]]:
    missing = missing_modules("client")
    if missing:
        typer.echo(missing_extra_message("client", missing), err=True)
        raise typer.Exit(1)
    from splitlab.cli.metrics import AnalyzerError, _fail, call

    bodies = []
    query = {"days": days, "alpha": alpha, "sequential": str(sequential).lower()}
    for metric in metrics:
        try:
            bodies.append(call("GET", "/holdout/impact", params={"metric": metric, **query}))
        except AnalyzerError as exc:
            _fail(str(exc))
    return bodies


def _from_file(
    file: Path,
    metrics: list[str],
    unit_col: str,
    day_col: str,
    holdout_col: str,
    count_col: str | None,
    aggregation: str,
    alpha: float,
    sequential: bool,
) -> list[dict[str, Any]]:
    from splitlab.core.analysis.holdout import holdout_impact
    from splitlab.core.errors import ArgumentError

    try:
        frame = read_table(file)
    except ValueError as exc:
        raise usage_error(f"--file{str(exc).removeprefix('FILE')}") from None
    options = {"--unit-col": unit_col, "--day-col": day_col, "--holdout-col": holdout_col}
    if count_col is not None:
        options["--count-col"] = count_col
    wanted = [*options.items(), *(("--metric", m) for m in metrics)]
    absent = [f"{option} {column}" for option, column in wanted if column not in frame.columns]
    if absent:
        raise usage_error(
            f"{file} has no column for {', '.join(absent)}; its columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    bodies = []
    for metric in metrics:
        try:
            impact = holdout_impact(
                frame[unit_col].to_numpy(),
                frame[day_col].to_numpy(),
                frame[metric].to_numpy(),
                frame[holdout_col].to_numpy(),
                count=None if count_col is None else frame[count_col].to_numpy(),
                aggregation=aggregation,  # type: ignore[arg-type]
                alpha=alpha,
                sequential=sequential,
                metric=metric,
            )
        except ArgumentError as exc:
            option = FILE_OPTIONS.get(exc.argument, exc.argument)
            raise usage_error(f"{option} ({metric}): {exc}") from None
        bodies.append(impact.to_dict())
    return bodies


FILE_OPTIONS = {
    "unit": "--unit-col",
    "day": "--day-col",
    "value": "--metric",
    "holdout": "--holdout-col",
    "count": "--count-col",
    "aggregation": "--aggregation",
    "alpha": "--alpha",
}
"""The library's argument names as the command's options (an error names the option)."""

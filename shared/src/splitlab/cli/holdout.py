"""``splitlab holdout impact``: the analyzer's ``GET /holdout/impact`` (the global holdout
against everyone else, per day) as a table, JSON or the HTML report."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from splitlab.cli.extras import requires
from splitlab.cli.output import emit, stdout_console


class HoldoutFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


def argument_problem(metrics: list[str], days: int, alpha: float) -> str | None:
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
    if not 1 <= days <= MAX_DAYS:
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
    @requires("client")
    def impact(
        metrics: Annotated[
            list[str],
            typer.Option("--metric", help="A plain outcome metric; repeat for several."),
        ],
        days: Annotated[int, typer.Option("--days", help="Days back from now (1-366).")] = 28,
        alpha: Annotated[float, typer.Option("--alpha")] = 0.05,
        sequential: Annotated[
            bool, typer.Option("--sequential", help="Always-valid intervals.")
        ] = False,
        output_format: Annotated[HoldoutFormat, typer.Option("--format")] = HoldoutFormat.table,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    ) -> None:
        """The cumulative effect of all launched changes on a metric, day by day: everyone
        outside the global holdout minus the holdout, with its CI.

        Several --metric options give a table (HTML: a section) per metric; with
        --format json, one metric prints the analyzer's answer and several a list of them.

        Example: splitlab holdout impact --metric revenue --days 14 --format html -o h.html
        """
        from splitlab.cli.metrics import AnalyzerError, _fail, call

        problem = argument_problem(metrics, days, alpha)
        if problem is not None:  # before the request: a usage error, as in `splitlab power`
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(code=2)
        bodies = []
        query = {"days": days, "alpha": alpha, "sequential": str(sequential).lower()}
        for metric in metrics:
            try:
                bodies.append(call("GET", "/holdout/impact", params={"metric": metric, **query}))
            except AnalyzerError as exc:
                _fail(str(exc))
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

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


def register(app: typer.Typer) -> None:
    holdout = typer.Typer(
        help="The global holdout. Example: splitlab holdout impact --metric revenue",
        no_args_is_help=True,
    )
    app.add_typer(holdout, name="holdout")

    @holdout.command("impact")
    @requires("client")
    def impact(
        metric: Annotated[str, typer.Option("--metric", help="A plain outcome metric.")],
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

        Example: splitlab holdout impact --metric revenue --days 14 --format html -o h.html
        """
        from splitlab.cli.metrics import AnalyzerError, _fail, call

        try:
            body = call(
                "GET",
                "/holdout/impact",
                params={"metric": metric, "days": days, "alpha": alpha,
                        "sequential": str(sequential).lower()},
            )  # fmt: skip
        except AnalyzerError as exc:
            _fail(str(exc))
        if output_format is HoldoutFormat.json:
            emit(json.dumps(body, indent=2) + "\n", output)
            return
        if output_format is HoldoutFormat.html:
            from splitlab.reports.holdout import holdout_html

            emit(holdout_html(body, title=f"SplitLab holdout impact: {metric}"), output)
            return
        from splitlab.reports.holdout import holdout_table

        stdout_console().print(holdout_table(body))

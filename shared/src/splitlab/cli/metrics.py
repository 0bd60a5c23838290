"""The analyzer's commands: ``splitlab metrics create|list|show|update|deprecate``,
``splitlab features load``, ``splitlab results KEY`` and ``splitlab analyzer-actions KEY``.

They talk to the analyzer over HTTP (``SPLITLAB_ANALYZER_URL``; admin calls send
``SPLITLAB_ADMIN_API_KEY``, reads the read key, else the admin key), like every other client:
the analyzer owns its tables.
"""

from __future__ import annotations

import io
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from splitlab.cli.extras import requires
from splitlab.cli.output import PIPED_WIDTH, emit, stdout_console, usage_error

FEATURE_CHUNK = 5000
"""Feature values per request (keeps each body well under the default 1 MiB limit)."""


class ResultsFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class AnalyzerError(Exception):
    pass


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _require_finite(options: dict[str, float | None]) -> None:
    """A usage error (exit 2, before any request) for a float option given as nan or inf:
    JSON has no such number, so the request could not even be written (a traceback)."""
    for option, value in options.items():
        if value is not None and not math.isfinite(value):
            raise usage_error(f"{option} must be a finite number; got {value}")


def call(
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
    admin: bool = False,
    timeout: float = 120.0,
) -> Any:
    """One request to the analyzer; raises ``AnalyzerError`` with its error message."""
    import httpx

    from splitlab.platform.settings import load_settings

    settings = load_settings()
    headers = {}
    if admin and settings.admin_api_key is None:
        raise AnalyzerError("no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)")
    key = settings.admin_api_key if admin else settings.read_api_key or settings.admin_api_key
    if key is not None:  # reads may need a key too (the read key, else the admin key)
        headers["Authorization"] = f"Bearer {key.get_secret_value()}"
    url = settings.analyzer_url.rstrip("/") + path
    try:
        response = httpx.request(
            method, url, json=body, params=params, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise AnalyzerError(
            f"the analyzer at {settings.analyzer_url} did not answer ({exc})"
        ) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise AnalyzerError(f"{response.status_code}: {message}")
    return response.json()


def feature_rows(path: Path, unit_col: str, time_col: str | None) -> list[dict[str, Any]]:
    """A wide CSV/Parquet file (a row per unit, a column per feature) as long feature values.

    Without ``time_col`` every value is observed at the Unix epoch: valid before any exposure.
    """
    import pandas as pd

    frame = (
        pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    )
    if unit_col not in frame.columns:
        raise ValueError(f"--unit-col: no column {unit_col!r} in {path.name}")
    if time_col is not None and time_col not in frame.columns:
        raise ValueError(f"--time-col: no column {time_col!r} in {path.name}")
    features = [c for c in frame.columns if c not in (unit_col, time_col)]
    if not features:
        raise ValueError(f"{path.name} has no feature columns besides {unit_col!r}")
    observed = (
        pd.to_datetime(frame[time_col], utc=True)
        if time_col is not None
        else pd.Series(pd.Timestamp(0, tz="UTC"), index=frame.index)
    )
    rows = []
    for name in features:
        values = pd.to_numeric(frame[name], errors="coerce")
        for unit, value, at in zip(frame[unit_col], values, observed, strict=True):
            if pd.notna(value):
                rows.append(
                    {"unit_id": str(unit), "name": str(name), "value": float(value),
                     "observed_at": at.isoformat()}
                )  # fmt: skip
    return rows


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2%}" if pct else f"{value:.4g}"
    return str(value)


def _metric_source(m: dict[str, Any]) -> str:
    if m["kind"] == "ratio":
        return f"{m['numerator']} / {m['denominator']}"
    return f"{m['source']}" + (f":{m['outcome_type']}" if m["outcome_type"] else "")


def metrics_table(metrics: list[dict[str, Any]]) -> Table:
    table = Table(title="metrics", title_justify="left")
    for column in (
        "name", "kind", "source", "aggregation", "direction", "window s", "pre days", "status",
    ):  # fmt: skip
        table.add_column(column)
    for m in metrics:
        table.add_row(
            m["name"], m["kind"], _metric_source(m), _fmt(m["aggregation"]), m["direction"],
            _fmt(m["attribution_window_seconds"]), _fmt(m["pre_period_days"]),
            "deprecated" if m.get("deprecated") else "active",
        )  # fmt: skip
    return table


def print_metric(metric: dict[str, Any], output_format: ListFormat) -> None:
    """One metric definition on stdout: the API's JSON, or a field a line."""
    if output_format == ListFormat.json:
        typer.echo(json.dumps(metric, indent=2))
    else:
        show_metric(metric, stdout_console())


def show_metric(m: dict[str, Any], console: Console) -> None:
    """One metric definition, a field a line."""
    status = "active"
    if m.get("deprecated"):
        status = f"deprecated since {str(m['deprecated_at'])[:19]}: {m['deprecation_reason']}"
    fields = [
        ("kind", m["kind"]),
        ("source", _metric_source(m)),
        ("aggregation", _fmt(m["aggregation"])),
        ("direction", m["direction"]),
        ("guardrail margin", _fmt(m["guardrail_margin"])),
        ("attribution window (s)", _fmt(m["attribution_window_seconds"])),
        ("pre-period (days)", _fmt(m["pre_period_days"])),
        ("covariates", ", ".join(m["covariates"]) or "-"),
        ("test", _test_text(m)),
        ("in-experiment covariates", ", ".join(m.get("in_experiment_covariates") or []) or "-"),
        ("description", m["description"] or "-"),
        ("status", status),
    ]
    console.print(f"[bold]{m['name']}[/bold]", highlight=False)
    for name, value in fields:
        console.print(f"  {name}: {value}", highlight=False, markup=False)


def _test_text(m: dict[str, Any]) -> str:
    """The metric's test, with the quantile of a bootstrap test."""
    test = str(m.get("test") or "welch")
    if test.startswith("bootstrap"):
        quantile = m.get("quantile")
        return f"{test} (quantile {0.5 if quantile is None else quantile:g})"
    return test


def actions_table(actions: list[dict[str, Any]]) -> Table:
    table = Table(title="analyzer actions (newest first)", title_justify="left")
    for column in ("at", "action", "reason", "outcome", "evidence"):
        table.add_column(column)
    for a in actions:
        table.add_row(
            str(a["at"])[:19], a["action"], a["reason"], a["outcome"],
            json.dumps(a["evidence"], sort_keys=True),
        )  # fmt: skip
    return table


def history_table(history: dict[str, Any]) -> Table:
    """One row per snapshot, metric and treatment (``GET .../results/history``)."""
    table = Table(title=f"results history: {history['experiment_key']}", title_justify="left")
    for column in ("taken at", "reason", "metric", "variant", "method", "VR", "n",
                   "effect", "CI", "p", "always-valid CS"):  # fmt: skip
        table.add_column(column)
    for snap in history["snapshots"]:
        for m in snap["metrics"]:
            table.add_row(
                snap["taken_at"][:19].replace("T", " "),
                snap["reason"],
                m["metric"],
                m["variant"],
                m["method"],
                _fmt(m["variance_reduction"], pct=True),
                f"{m['n_treatment']} vs {m['n_control']}",
                _fmt(m["effect"]),
                f"[{_fmt(m['ci_lower'])}, {_fmt(m['ci_upper'])}]",
                _fmt(m["p_value"]),
                f"[{_fmt(m['cs_lower'])}, {_fmt(m['cs_upper'])}]",
            )
    if not history["snapshots"]:
        table.caption = "no snapshots yet (one per SPLITLAB_ANALYZER_HISTORY_INTERVAL_SECONDS)"
    return table


def register(app: typer.Typer) -> None:
    metrics_app = typer.Typer(
        help="Metric definitions of the analyzer. Example: splitlab metrics list",
        no_args_is_help=True,
    )
    features_app = typer.Typer(
        help="Pre-exposure unit features (covariates). "
        "Example: splitlab features load features.csv --unit-col user_id",
        no_args_is_help=True,
    )
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(features_app, name="features")

    @metrics_app.command("create")
    @requires("client")
    def create(
        name: Annotated[str, typer.Argument(help="Metric name, e.g. revenue.")],
        source: Annotated[
            str | None, typer.Option(help="outcome | prediction_latency | prediction_error")
        ] = None,
        outcome_type: Annotated[str | None, typer.Option(help="For source=outcome.")] = None,
        aggregation: Annotated[
            str | None, typer.Option(help="sum | count | any | mean | event_mean")
        ] = None,
        numerator: Annotated[str | None, typer.Option(help="Ratio: numerator metric.")] = None,
        denominator: Annotated[str | None, typer.Option(help="Ratio: denominator metric.")] = None,
        direction: Annotated[str, typer.Option(help="higher_is_better | lower_is_better")] = (
            "higher_is_better"
        ),
        guardrail_margin: Annotated[float | None, typer.Option(help="Relative margin.")] = None,
        window_seconds: Annotated[
            float | None, typer.Option(help="Attribution window after first exposure.")
        ] = None,
        pre_period_days: Annotated[float, typer.Option(help="CUPED pre-period; 0: off.")] = 14.0,
        covariate: Annotated[
            list[str] | None, typer.Option(help="unit_features name (repeatable).")
        ] = None,
        in_experiment_covariate: Annotated[
            list[str] | None,
            typer.Option(
                help="CUNOPAC: unit_features name observed after exposure that the treatment "
                "cannot move (repeatable); balance-checked before use."
            ),
        ] = None,
        description: Annotated[str, typer.Option()] = "",
        test: Annotated[
            str,
            typer.Option(
                help="welch | z | chi2 | mann_whitney | bootstrap_bca | bootstrap_percentile"
            ),
        ] = "welch",
        quantile: Annotated[
            float | None, typer.Option(help="Quantile in (0, 1) of a bootstrap test (0.5).")
        ] = None,
    ) -> None:
        """Define a metric (POST /metrics).

        Example: splitlab metrics create conversion --source outcome --outcome-type purchase
        --aggregation any
        """
        _require_finite(
            {"--guardrail-margin": guardrail_margin, "--window-seconds": window_seconds,
             "--pre-period-days": pre_period_days, "--quantile": quantile}
        )  # fmt: skip
        body = {
            "name": name, "source": source, "outcome_type": outcome_type,
            "aggregation": aggregation, "numerator": numerator, "denominator": denominator,
            "direction": direction, "guardrail_margin": guardrail_margin,
            "attribution_window_seconds": window_seconds, "pre_period_days": pre_period_days,
            "covariates": covariate or [], "description": description,
            "test": test, "quantile": quantile,
            "in_experiment_covariates": in_experiment_covariate or [],
        }  # fmt: skip
        try:
            created = call("POST", "/metrics", body, admin=True)
        except AnalyzerError as exc:
            _fail(str(exc))
        typer.echo(json.dumps(created, indent=2))

    @metrics_app.command("list")
    @requires("client")
    def list_metrics(
        output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    ) -> None:
        """List metric definitions (GET /metric-definitions).

        Example: splitlab metrics list --format json
        """
        try:
            metrics = call("GET", "/metric-definitions")["metrics"]
        except AnalyzerError as exc:
            _fail(str(exc))
        if output_format == ListFormat.json:
            typer.echo(json.dumps(metrics, indent=2))
            return
        stdout_console().print(metrics_table(metrics))

    @metrics_app.command("show")
    @requires("client")
    def show(
        name: Annotated[str, typer.Argument(help="Metric name.")],
        output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    ) -> None:
        """Show one metric definition (GET /metric-definitions/NAME).

        Example: splitlab metrics show conversion
        """
        try:
            metric = call("GET", f"/metric-definitions/{name}")
        except AnalyzerError as exc:
            _fail(str(exc))
        print_metric(metric, output_format)

    @metrics_app.command("update")
    @requires("client")
    def update(
        name: Annotated[str, typer.Argument(help="Metric name (it cannot change).")],
        description: Annotated[str | None, typer.Option()] = None,
        direction: Annotated[
            str | None, typer.Option(help="higher_is_better | lower_is_better")
        ] = None,
        guardrail_margin: Annotated[float | None, typer.Option(help="Relative margin.")] = None,
        window_seconds: Annotated[
            float | None, typer.Option(help="Attribution window after first exposure.")
        ] = None,
        pre_period_days: Annotated[
            float | None, typer.Option(help="CUPED pre-period; 0: off.")
        ] = None,
        covariate: Annotated[
            list[str] | None,
            typer.Option(help="unit_features name (repeatable); replaces the list."),
        ] = None,
        in_experiment_covariate: Annotated[
            list[str] | None,
            typer.Option(help="In-experiment unit_features name (repeatable); replaces the list."),
        ] = None,
        outcome_type: Annotated[str | None, typer.Option(help="For source=outcome.")] = None,
        aggregation: Annotated[
            str | None, typer.Option(help="sum | count | any | mean | event_mean")
        ] = None,
        test: Annotated[
            str | None,
            typer.Option(
                help="welch | z | chi2 | mann_whitney | bootstrap_bca | bootstrap_percentile"
            ),
        ] = None,
        quantile: Annotated[
            float | None, typer.Option(help="Quantile in (0, 1) of a bootstrap test.")
        ] = None,
        output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    ) -> None:
        """Change fields of a metric definition (PATCH /metric-definitions/NAME); results use
        it from their next refresh.

        Example: splitlab metrics update revenue --guardrail-margin 0.02 --window-seconds 86400
        """
        _require_finite(
            {"--guardrail-margin": guardrail_margin, "--window-seconds": window_seconds,
             "--pre-period-days": pre_period_days, "--quantile": quantile}
        )  # fmt: skip
        sent = {
            "description": description, "direction": direction,
            "guardrail_margin": guardrail_margin, "attribution_window_seconds": window_seconds,
            "pre_period_days": pre_period_days, "covariates": covariate,
            "outcome_type": outcome_type, "aggregation": aggregation,
            "test": test, "quantile": quantile,
            "in_experiment_covariates": in_experiment_covariate,
        }  # fmt: skip
        body = {k: v for k, v in sent.items() if v is not None}
        if not body:
            _fail("nothing to change: give at least one option (see --help)")
        try:
            metric = call("PATCH", f"/metric-definitions/{name}", body, admin=True)
        except AnalyzerError as exc:
            _fail(str(exc))
        print_metric(metric, output_format)

    @metrics_app.command("deprecate")
    @requires("client")
    def deprecate(
        name: Annotated[str, typer.Argument(help="Metric name.")],
        reason: Annotated[str, typer.Option(help="Why, and what to use instead.")],
        output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    ) -> None:
        """Deprecate a metric: running experiments keep it, new ratio metrics may not use it.

        Example: splitlab metrics deprecate revenue --reason "use revenue_net (refunds
        excluded)"
        """
        try:
            metric = call(
                "POST", f"/metric-definitions/{name}/deprecate", {"reason": reason}, admin=True
            )
        except AnalyzerError as exc:
            _fail(str(exc))
        print_metric(metric, output_format)

    @features_app.command("load")
    @requires("client")
    def load(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
        unit_col: Annotated[str, typer.Option(help="Column with the unit id.")] = "unit_id",
        time_col: Annotated[
            str | None, typer.Option(help="Column with the observation time (else the epoch).")
        ] = None,
    ) -> None:
        """Load a wide file (a row per unit, a column per feature) into unit_features.

        Example: splitlab features load features.csv --unit-col user_id --time-col observed_at
        """
        try:
            rows = feature_rows(file, unit_col, time_col)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
        loaded = 0
        try:
            for start in range(0, len(rows), FEATURE_CHUNK):
                chunk = rows[start : start + FEATURE_CHUNK]
                loaded += int(
                    call("POST", "/unit-features", {"features": chunk}, admin=True)["loaded"]
                )
        except AnalyzerError as exc:
            _fail(f"{exc} (after {loaded} values)")
        typer.echo(f"loaded {loaded} feature values from {file.name}")

    @app.command("results")
    @requires("client")
    def results(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        method: Annotated[str, typer.Option(help="auto | none | cuped | regression | cupac")] = (
            "auto"
        ),
        sequential: Annotated[bool, typer.Option(help="Always-valid intervals.")] = False,
        refresh: Annotated[
            bool, typer.Option(help="Recompute now instead of the cache (admin key).")
        ] = False,
        history: Annotated[
            bool, typer.Option("--history", help="The stored snapshots over time instead.")
        ] = False,
        output_format: Annotated[ResultsFormat, typer.Option("--format")] = ResultsFormat.table,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
        segment: Annotated[
            str | None,
            typer.Option(
                "--segment",
                help="Results per segment too: an attribute of the units' first exposure "
                "(country), or ATTRIBUTE:EDGES for numeric buckets (tenure_days:0,30,180,365).",
            ),
        ] = None,
        segment_correction: Annotated[
            str,
            typer.Option(
                "--segment-correction", help="Across segments: holm | benjamini-hochberg."
            ),
        ] = "holm",
    ) -> None:
        """An experiment's results from the analyzer: tables, JSON, or the HTML report with
        plots (the same report as `splitlab analyze --format html`).

        Example: splitlab results ranker-v3 --format html -o report.html
        (over time: splitlab results ranker-v3 --history; by country: --segment country)
        """
        if history:
            try:
                past = call("GET", f"/experiments/{key}/results/history")
            except AnalyzerError as exc:
                _fail(str(exc))
            if output_format == ResultsFormat.json:
                typer.echo(json.dumps(past, indent=2))
            else:
                Console(width=160).print(history_table(past))
            return
        try:
            if refresh:
                call("POST", f"/experiments/{key}/refresh", admin=True)
            body = call(
                "GET",
                f"/experiments/{key}/results",
                params={
                    "method": method,
                    "sequential": str(sequential).lower(),
                    **(
                        {"segment": segment, "segment_correction": segment_correction}
                        if segment
                        else {}
                    ),
                },
            )
        except AnalyzerError as exc:
            _fail(str(exc))
        if output_format == ResultsFormat.json:
            emit(json.dumps(body, indent=2) + "\n", output)
            return
        if output_format == ResultsFormat.html:
            from splitlab.reports.analysis import html_report

            emit(html_report(body, title=f"SplitLab results: {key}"), output)
            return
        from splitlab.reports.analysis import summary_tables

        tables = summary_tables(body)
        if output is None:
            console = stdout_console()
            for table in tables:
                console.print(table)
            return
        recorder = Console(record=True, width=PIPED_WIDTH, file=io.StringIO())
        for table in tables:
            recorder.print(table)
        emit(recorder.export_text(), output)

    @app.command("analyzer-actions")
    @requires("client")
    def analyzer_actions(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    ) -> None:
        """What the analyzer did on its own to an experiment (SRM and guardrail flags, pauses),
        with the evidence, newest first (GET /experiments/KEY/analyzer-actions).

        Example: splitlab analyzer-actions ranker-v3 --format json
        """
        try:
            actions = call("GET", f"/experiments/{key}/analyzer-actions")["actions"]
        except AnalyzerError as exc:
            _fail(str(exc))
        if output_format == ListFormat.json:
            typer.echo(json.dumps(actions, indent=2))
            return
        if not actions:
            stdout_console().print(f"the analyzer took no action on {key}", highlight=False)
            return
        stdout_console().print(actions_table(actions))

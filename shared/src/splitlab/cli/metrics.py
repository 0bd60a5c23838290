"""The analyzer's commands: ``splitlab metrics create|list``, ``splitlab features load`` and
``splitlab results KEY``.

They talk to the analyzer over HTTP (``SPLITLAB_ANALYZER_URL``, admin calls with
``SPLITLAB_ADMIN_API_KEY``), like every other client: the analyzer owns its tables.
"""

from __future__ import annotations

import html
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

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

    from splitlab.settings import load_settings

    settings = load_settings()
    headers = {}
    if admin:
        if settings.admin_api_key is None:
            raise AnalyzerError(
                "no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)"
            )
        headers["Authorization"] = f"Bearer {settings.admin_api_key.get_secret_value()}"
    elif (reader := settings.read_api_key or settings.admin_api_key) is not None:
        headers["Authorization"] = f"Bearer {reader.get_secret_value()}"  # reads may need a key
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


def results_tables(body: dict[str, Any]) -> list[Table]:
    tables = []
    for name, metric in body["metrics"].items():
        vr = metric.get("variance_reduction")
        table = Table(
            title=f"{name} ({metric['kind']}) - {metric['method']}"
            + (f", variance reduction {vr:.1%}" if vr else ""),
            title_justify="left",
        )
        for column in ("variant", "n", "mean", "effect", "CI", "rel effect", "p", "always-valid p"):
            table.add_column(column)
        for variant, c in metric["comparisons"].items():
            av = body.get("monitoring", {}).get(name, {}).get(variant, {})
            table.add_row(
                variant,
                f"{c['n_treatment']} vs {c['n_control']}",
                f"{_fmt(c['mean_treatment'])} vs {_fmt(c['mean_control'])}",
                _fmt(c["effect"]),
                f"[{_fmt(c['ci_lower'])}, {_fmt(c['ci_upper'])}]",
                _fmt(c["rel_effect"], pct=True),
                _fmt(c["p_value"]),
                _fmt(av.get("always_valid_p_value")),
            )
        tables.append(table)
    summary = Table(title="SRM, guardrails, decisions", title_justify="left")
    summary.add_column("check")
    summary.add_column("result")
    srm = body["srm"]
    summary.add_row("SRM", f"{srm['status']} (p = {_fmt(srm['p_value'])}, {srm['observed']})")
    for g in body.get("guardrails", []):
        summary.add_row(
            f"guardrail {g['metric']} / {g['variant']}",
            f"{g['status']} (harm {_fmt(g['harm'], pct=True)}, margin {g['margin']:.1%}, "
            f"always-valid p {_fmt(g['always_valid_p_value'])})",
        )
    for variant, d in body["decisions"].items():
        summary.add_row(f"decision {variant}", f"{d['action']}: {'; '.join(d['reasons'])}")
    sample = body.get("sample", {})
    if sample:
        summary.add_row(
            "sample",
            f"{sample.get('total_units')} units, planned {sample.get('planned_sample_size')}, "
            f"{_fmt(sample.get('days_to_planned'))} days to plan",
        )
    tables.append(summary)
    return tables


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


def results_html(key: str, body: dict[str, Any]) -> str:
    """A self-contained HTML page of the result tables."""
    console = Console(record=True, width=140)
    for table in results_tables(body):
        console.print(table)
    page = console.export_html(inline_styles=True)
    title = f"<h1>SplitLab results: {html.escape(key)}</h1>"
    return page.replace("<body>", f"<body>{title}", 1)


def register(app: typer.Typer) -> None:
    metrics_app = typer.Typer(help="Metric definitions of the analyzer.", no_args_is_help=True)
    features_app = typer.Typer(
        help="Pre-exposure unit features (covariates).", no_args_is_help=True
    )
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(features_app, name="features")

    @metrics_app.command("create")
    def create(
        name: Annotated[str, typer.Argument(help="Metric name, e.g. revenue.")],
        source: Annotated[
            str | None, typer.Option(help="outcome | prediction_latency | prediction_error")
        ] = None,
        outcome_type: Annotated[str | None, typer.Option(help="For source=outcome.")] = None,
        aggregation: Annotated[str | None, typer.Option(help="sum | count | any | mean")] = None,
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
        description: Annotated[str, typer.Option()] = "",
    ) -> None:
        """Define a metric (POST /metrics)."""
        body = {
            "name": name, "source": source, "outcome_type": outcome_type,
            "aggregation": aggregation, "numerator": numerator, "denominator": denominator,
            "direction": direction, "guardrail_margin": guardrail_margin,
            "attribution_window_seconds": window_seconds, "pre_period_days": pre_period_days,
            "covariates": covariate or [], "description": description,
        }  # fmt: skip
        try:
            created = call("POST", "/metrics", body, admin=True)
        except AnalyzerError as exc:
            _fail(str(exc))
        typer.echo(json.dumps(created, indent=2))

    @metrics_app.command("list")
    def list_metrics(
        output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    ) -> None:
        """List metric definitions (GET /metric-definitions)."""
        try:
            metrics = call("GET", "/metric-definitions")["metrics"]
        except AnalyzerError as exc:
            _fail(str(exc))
        if output_format == ListFormat.json:
            typer.echo(json.dumps(metrics, indent=2))
            return
        table = Table(title="metrics", title_justify="left")
        for column in (
            "name",
            "kind",
            "source",
            "aggregation",
            "direction",
            "window s",
            "pre days",
        ):
            table.add_column(column)
        for m in metrics:
            source = (
                f"{m['numerator']} / {m['denominator']}"
                if m["kind"] == "ratio"
                else f"{m['source']}" + (f":{m['outcome_type']}" if m["outcome_type"] else "")
            )
            table.add_row(
                m["name"], m["kind"], source, _fmt(m["aggregation"]), m["direction"],
                _fmt(m["attribution_window_seconds"]), _fmt(m["pre_period_days"]),
            )  # fmt: skip
        Console().print(table)

    @features_app.command("load")
    def load(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
        unit_col: Annotated[str, typer.Option(help="Column with the unit id.")] = "unit_id",
        time_col: Annotated[
            str | None, typer.Option(help="Column with the observation time (else the epoch).")
        ] = None,
    ) -> None:
        """Load a wide file (a row per unit, a column per feature) into unit_features."""
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
    def results(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        method: Annotated[str, typer.Option(help="auto | none | cuped | regression | cupac")] = (
            "auto"
        ),
        sequential: Annotated[bool, typer.Option(help="Always-valid intervals.")] = False,
        refresh: Annotated[bool, typer.Option(help="Recompute now instead of the cache.")] = False,
        history: Annotated[
            bool, typer.Option("--history", help="The stored snapshots over time instead.")
        ] = False,
        output_format: Annotated[ResultsFormat, typer.Option("--format")] = ResultsFormat.table,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    ) -> None:
        """An experiment's results from the analyzer (table, JSON or an HTML report)."""
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
                params={"method": method, "sequential": str(sequential).lower()},
            )
        except AnalyzerError as exc:
            _fail(str(exc))
        if output_format == ResultsFormat.table:
            console = Console()
            for table in results_tables(body):
                console.print(table)
            return
        text = (
            json.dumps(body, indent=2)
            if output_format == ResultsFormat.json
            else results_html(key, body)
        )
        if output is not None:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {output}")
        else:
            typer.echo(text)

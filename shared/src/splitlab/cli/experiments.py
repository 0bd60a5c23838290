"""``splitlab experiments``: manage experiments through the assignment service's admin API.

Reads the service URL (``SPLITLAB_ASSIGNMENT_URL``) and the admin key
(``SPLITLAB_ADMIN_API_KEY``) from the settings. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="Readable tables or the API's JSON.")
]


class CommandError(Exception):
    """A failure to report in one line."""


def read_experiment_file(path: Path) -> dict[str, Any]:
    """An experiment body from a YAML (``.yaml``/``.yml``) or JSON file."""
    import yaml

    if not path.is_file():
        raise CommandError(f"FILE: {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = (
            yaml.safe_load(text) if path.suffix.lower() in {".yaml", ".yml"} else json.loads(text)
        )
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise CommandError(f"FILE: {path} is not valid {path.suffix.lstrip('.')}: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"FILE: {path} must hold one experiment object")
    return data


def api_request(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the admin API; ``CommandError`` with the API's message on any failure."""
    import httpx

    from splitlab.settings import load_settings

    settings = load_settings()
    if settings.admin_api_key is None:
        raise CommandError("no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)")
    # The audit log names the key's configured name (SPLITLAB_ADMIN_KEY_NAME, or the name of a
    # SPLITLAB_API_KEYS entry), never a name the caller sends.
    headers = {"Authorization": f"Bearer {settings.admin_api_key.get_secret_value()}"}
    url = f"{settings.assignment_url.rstrip('/')}{path}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"cannot reach the assignment service at {settings.assignment_url} "
            f"({type(exc).__name__}); is it running (`make up`)?"
        ) from None
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message = error["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise CommandError(f"{response.status_code}: {message}")
    return response.json()


def _fail(exc: CommandError) -> NoReturn:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
    raise typer.Exit(1)


def _warn_preflight(experiment: dict[str, Any]) -> None:
    """The pre-flight check's findings, on stderr (stdout keeps the answer)."""
    report = experiment.get("preflight")
    if not report or report["ok"]:
        return
    problems = [m["message"] for m in report["missing"]]
    problems += [
        f"{u['service']}: could not be asked ({u['reason']})" for u in report["unreachable"]
    ]
    lead = "started despite" if report.get("forced") else "start will refuse until fixed"
    err.print(f"[yellow]warning:[/yellow] pre-flight check ({lead}):", highlight=False)
    for problem in problems:
        err.print(f"  - {problem}", highlight=False, markup=False)


def _show_one(experiment: dict[str, Any], output_format: OutputFormat) -> None:
    _warn_preflight(experiment)
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(experiment))
        return
    from rich.table import Table

    out.print(
        f"[bold]{experiment['key']}[/bold] {experiment['name']} - [cyan]{experiment['status']}"
        f"[/cyan] (version {experiment['version']}, bucket version "
        f"{experiment['bucket_version']})",
        highlight=False,
    )
    details = [
        ("owner", experiment["owner"] or "-"),
        ("hypothesis", experiment["hypothesis"] or "-"),
        ("coverage", f"{experiment['coverage']:g}"),
        ("primary metric", experiment["metrics"]["primary"]),
        ("allowed actions", ", ".join(experiment["allowed_actions"]) or "none"),
    ]
    if experiment.get("targeting"):
        details.append(("targeting", json.dumps(experiment["targeting"])))
    for name, value in details:
        out.print(f"  {name}: {value}", highlight=False)
    table = Table("variant", "weight", "model")
    for variant in experiment["variants"]:
        table.add_row(variant["key"], f"{variant['weight']:g}", variant.get("model") or "-")
    out.print(table)


def _show_list(experiments: list[dict[str, Any]], output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(experiments))
        return
    from rich.table import Table

    table = Table("key", "name", "status", "variants", "coverage", "updated")
    for e in experiments:
        table.add_row(
            e["key"],
            e["name"],
            e["status"],
            ", ".join(f"{v['key']}={v['weight']:g}" for v in e["variants"]),
            f"{e['coverage']:g}",
            e["updated_at"][:19],
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    experiments = typer.Typer(
        help="Experiments in the assignment service (admin API).", no_args_is_help=True
    )
    app.add_typer(experiments, name="experiments")

    @experiments.command("create")
    def create(
        file: Annotated[Path, typer.Argument(help="The experiment, as YAML or JSON.")],
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Create a draft experiment from FILE (see examples/experiment.yaml)."""
        try:
            _show_one(
                api_request("POST", "/experiments", read_experiment_file(file)), output_format
            )
        except CommandError as exc:
            _fail(exc)

    @experiments.command("list")
    def list_(
        status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """List experiments."""
        path = "/experiments" + (f"?status={status}" if status else "")
        try:
            _show_list(api_request("GET", path)["experiments"], output_format)
        except CommandError as exc:
            _fail(exc)

    @experiments.command("show")
    def show(key: str, output_format: FormatOption = OutputFormat.table) -> None:
        """Show one experiment."""
        try:
            _show_one(api_request("GET", f"/experiments/{key}"), output_format)
        except CommandError as exc:
            _fail(exc)

    def action(name: str, summary: str) -> None:
        def act(key: str, output_format: FormatOption = OutputFormat.table) -> None:
            try:
                _show_one(api_request("POST", f"/experiments/{key}/{name}"), output_format)
            except CommandError as exc:
                _fail(exc)

        act.__doc__ = summary
        experiments.command(name)(act)

    @experiments.command("start")
    def start(
        key: str,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Start even though the pre-flight check finds metrics or models missing, "
                "or cannot ask the analyzer or the router.",
            ),
        ] = False,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Start a draft experiment, or resume a paused one, once its metrics are defined in
        the analyzer and its models registered in the router (the pre-flight check).

        Example: splitlab experiments start ranker-v3"""
        path = f"/experiments/{key}/start" + ("?force=true" if force else "")
        try:
            _show_one(api_request("POST", path), output_format)
        except CommandError as exc:
            _fail(exc)

    action("pause", "Pause a running experiment: everyone gets control.")
    action("stop", "Stop an experiment for good.")
    action("archive", "Archive a stopped experiment (stop it first).")

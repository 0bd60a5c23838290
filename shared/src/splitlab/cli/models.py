"""``splitlab models``: register and list model versions through the router's admin API.

Reads the router URL (``SPLITLAB_ROUTER_URL``) and the admin key (``SPLITLAB_ADMIN_API_KEY``)
from the settings. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from splitlab.cli.experiments import CommandError, FormatOption, OutputFormat, read_experiment_file

out = Console()
err = Console(stderr=True)


def router_request(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the router's admin API; ``CommandError`` with the API's message on any failure."""
    import httpx

    from splitlab.settings import load_settings

    settings = load_settings()
    if settings.admin_api_key is None:
        raise CommandError("no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)")
    headers = {"Authorization": f"Bearer {settings.admin_api_key.get_secret_value()}"}
    url = f"{settings.router_url.rstrip('/')}{path}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"cannot reach the router at {settings.router_url} ({type(exc).__name__}); "
            "is it running (`make up`)?"
        ) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise CommandError(f"{response.status_code}: {message}")
    return response.json()


def _fail(exc: CommandError) -> NoReturn:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
    raise typer.Exit(1)


def _show(models: list[dict[str, Any]], output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(models))
        return
    from rich.table import Table

    table = Table("model", "flavor", "location", "features", "loaded", "registered")
    for m in models:
        table.add_row(
            m["ref"],
            m["flavor"],
            m["artifact"] or m["url"] or "-",
            ", ".join(f"{f['name']}:{f['type']}" for f in m["input_schema"]),
            "yes" if m["loaded"] else "no",
            m["created_at"][:19],
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="Model versions in the router's registry.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("register")
    def register_(
        file: Annotated[Path, typer.Argument(help="The model version, as YAML or JSON.")],
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Register a model version from FILE (see examples/model.yaml); the router loads and
        checks an sklearn artifact before storing it."""
        try:
            _show([router_request("POST", "/models", read_experiment_file(file))], output_format)
        except CommandError as exc:
            _fail(exc)

    @models.command("list")
    def list_(
        name: Annotated[str | None, typer.Option(help="Only versions of this model.")] = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """List registered model versions."""
        path = "/models" + (f"?name={name}" if name else "")
        try:
            _show(router_request("GET", path)["models"], output_format)
        except CommandError as exc:
            _fail(exc)

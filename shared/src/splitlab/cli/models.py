"""``splitlab models``: register, list and show model versions through the router's admin API.

Reads the router URL (``SPLITLAB_ROUTER_URL``) and the admin key (``SPLITLAB_ADMIN_API_KEY``)
from the settings. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from splitlab.cli.experiments import CommandError, FormatOption, OutputFormat, read_experiment_file
from splitlab.cli.extras import requires
from splitlab.cli.output import stderr_console, stdout_console

err = stderr_console()


def router_request(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    upload: Path | None = None,
    missing_ok: bool = False,
) -> Any:
    """Call the router's admin API; ``CommandError`` with the API's message on any failure.
    ``upload``: send ``body`` as the multipart ``spec`` and this file as ``file``. With
    ``missing_ok`` a 404 answers None."""
    import httpx

    from splitlab.platform.settings import load_settings

    settings = load_settings()
    if settings.admin_api_key is None:
        raise CommandError("no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)")
    headers = {"Authorization": f"Bearer {settings.admin_api_key.get_secret_value()}"}
    url = f"{settings.router_url.rstrip('/')}{path}"
    try:
        if upload is not None:
            with upload.open("rb") as handle:
                response = httpx.request(
                    method,
                    url,
                    data={"spec": json.dumps(body)},
                    files={"file": (upload.name, handle, "application/octet-stream")},
                    headers=headers,
                    timeout=120.0,
                )
        else:
            response = httpx.request(method, url, json=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"cannot reach the router at {settings.router_url} ({type(exc).__name__}); "
            "is it running (`make up`)?"
        ) from None
    if missing_ok and response.status_code == 404:
        return None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise CommandError(f"{response.status_code}: {message}")
    return response.json()


def upload_model(spec: dict[str, Any], artifact: Path) -> Any:
    """Register ``spec`` with ``artifact`` uploaded, unless the version is registered with the
    same file already (its sha256): then the registered version, without sending the file."""
    import hashlib

    if not artifact.is_file():
        raise CommandError(f"--file: {artifact} does not exist")
    sha256 = hashlib.sha256(artifact.read_bytes()).hexdigest()
    name, version = spec.get("name"), spec.get("version")
    if isinstance(name, str) and isinstance(version, str | int):
        found = router_request("GET", f"/models/{name}/{version}", missing_ok=True)
        if found is not None and found.get("sha256") == sha256:
            err.print(f"{name}:{version} is registered with this file already; not uploaded")
            return found
    body = {**spec, "flavor": spec.get("flavor", "sklearn"), "sha256": sha256}
    body.setdefault("artifact", artifact.name)
    return router_request("POST", "/models", body, upload=artifact)


def _fail(exc: CommandError) -> NoReturn:
    err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
    raise typer.Exit(1)


def _show(models: list[dict[str, Any]], output_format: OutputFormat) -> None:
    out = stdout_console()
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


def _show_detail(model: dict[str, Any], output_format: OutputFormat) -> None:
    out = stdout_console()
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(model))
        return
    from rich.table import Table

    out.print(f"[bold]{model['ref']}[/bold] ({model['flavor']})", highlight=False)
    details = [
        ("location", model["artifact"] or model["url"] or "-"),
        ("sha256", model["sha256"] or "-"),
        ("timeout (ms)", model["timeout_ms"]),
        ("loaded on this replica", "yes" if model["loaded"] else "no"),
        ("registered", model["created_at"]),
        ("metadata", json.dumps(model["metadata"], sort_keys=True) if model["metadata"] else "-"),
    ]
    for name, value in details:
        out.print(f"  {name}: {value}", highlight=False, markup=False)
    table = Table("feature", "type", title="input schema", title_justify="left")
    for feature in model["input_schema"]:
        table.add_row(feature["name"], feature["type"])
    out.print(table)


def split_ref(ref: str, version: str | None) -> tuple[str, str]:
    """``name:version`` or ``name`` and a separate version; ``CommandError`` otherwise."""
    name, sep, tail = ref.partition(":")
    if sep and version is None and name and tail:
        return name, tail
    if not sep and version:
        return ref, version
    raise CommandError(f"MODEL: give NAME:VERSION (e.g. ranker:3) or NAME VERSION, got {ref!r}")


def register(app: typer.Typer) -> None:
    models = typer.Typer(
        help="Model versions in the router's registry. Example: splitlab models list",
        no_args_is_help=True,
    )
    app.add_typer(models, name="models")

    @models.command("register")
    @requires("client")
    def register_(
        file: Annotated[Path, typer.Argument(help="The model version, as YAML or JSON.")],
        artifact: Annotated[
            Path | None,
            typer.Option(
                "--file",
                help="Upload this .skops file with the version (stored in Postgres, so every "
                "router replica loads it); skipped when the version is registered with the "
                "same file.",
            ),
        ] = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Register a model version from FILE (see examples/model.yaml); the router loads and
        checks an sklearn artifact before storing it.

        Example: splitlab models register examples/model.yaml --file ranker-2.skops"""
        try:
            spec = read_experiment_file(file)
            if artifact is None:
                _show([router_request("POST", "/models", spec)], output_format)
                return
            _show([upload_model(spec, artifact)], output_format)
        except CommandError as exc:
            _fail(exc)

    @models.command("list")
    @requires("client")
    def list_(
        name: Annotated[str | None, typer.Option(help="Only versions of this model.")] = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """List registered model versions.

        Example: splitlab models list --name ranker
        """
        path = "/models" + (f"?name={name}" if name else "")
        try:
            _show(router_request("GET", path)["models"], output_format)
        except CommandError as exc:
            _fail(exc)

    @models.command("show")
    @requires("client")
    def show(
        model: Annotated[str, typer.Argument(help="NAME:VERSION, as variants name it.")],
        version: Annotated[
            str | None, typer.Argument(help="The version, when MODEL is only the name.")
        ] = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Show one model version: where it lives, its checksum, input schema and metadata.

        Example: splitlab models show ranker:3
        """
        try:
            name, number = split_ref(model, version)
            _show_detail(router_request("GET", f"/models/{name}/{number}"), output_format)
        except CommandError as exc:
            _fail(exc)

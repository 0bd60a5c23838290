"""``splitlab experiments``: manage experiments through the assignment service's admin API.

Reads the service URL (``SPLITLAB_ASSIGNMENT_URL``) and the admin key
(``SPLITLAB_ADMIN_API_KEY``) from the settings. Errors print one line and exit non-zero.
Tables go to stdout at full width when piped (see :mod:`splitlab.cli.output`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from splitlab.cli.extras import requires
from splitlab.cli.output import stderr_console, stdout_console

err = stderr_console()


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="Readable tables or the API's JSON.")
]


SegmentAttributeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--segment-attribute",
        help="NAME (repeatable): a request attribute every exposure records, to segment "
        "results by; added to the experiment's segment_attributes.",
    ),
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

    from splitlab.platform.settings import load_settings

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


def parse_weights(values: list[str]) -> dict[str, float]:
    """``VARIANT=WEIGHT`` pairs; ``CommandError`` naming ``--weight`` otherwise."""
    weights: dict[str, float] = {}
    for item in values:
        variant, sep, number = item.partition("=")
        try:
            if not sep or not variant:
                raise ValueError(item)
            weights[variant] = float(number)
        except ValueError:
            raise CommandError(
                f"--weight expects VARIANT=WEIGHT (e.g. treatment=0.2), got {item!r}"
            ) from None
    return weights


def with_segment_attributes(body: dict[str, Any], base: list[str], names: list[str]) -> None:
    """Add ``names`` (``--segment-attribute``) to ``base`` in ``body['segment_attributes']``,
    each once, in order; nothing when no name is given."""
    if not names:
        return
    listed = list(base)
    listed += [n for i, n in enumerate(names) if n not in listed and n not in names[:i]]
    body["segment_attributes"] = listed


def update_body(
    current: dict[str, Any],
    patch: dict[str, Any],
    weights: dict[str, float],
    coverage: float | None,
    segment_attributes: list[str] | None = None,
) -> dict[str, Any]:
    """The PATCH body: ``patch`` (from a file), then the flags on top. ``--weight`` changes the
    named variants of the current list (or of the file's ``variants``) and keeps the rest;
    ``--segment-attribute`` adds to the current ``segment_attributes`` (or the file's)."""
    body = dict(patch)
    if weights:
        variants = [dict(v) for v in body.get("variants") or current["variants"]]
        known = {v["key"] for v in variants}
        unknown = sorted(set(weights) - known)
        if unknown:
            raise CommandError(
                f"--weight: no variant {', '.join(map(repr, unknown))} in {current['key']!r} "
                f"(variants: {', '.join(sorted(known))})"
            )
        for variant in variants:
            if variant["key"] in weights:
                variant["weight"] = weights[variant["key"]]
        body["variants"] = variants
    if coverage is not None:
        body["coverage"] = coverage
    if segment_attributes:
        base = body.get("segment_attributes", current.get("segment_attributes") or [])
        with_segment_attributes(body, base, segment_attributes)
    if not body:
        raise CommandError(
            "nothing to change: give --weight, --coverage, --segment-attribute or --file"
        )
    return body


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
    out = stdout_console()
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
    if experiment.get("segment_attributes"):
        details.append(("segment attributes", ", ".join(experiment["segment_attributes"])))
    for name, value in details:
        out.print(f"  {name}: {value}", highlight=False, markup=False)
    table = Table("variant", "weight", "model")
    for variant in experiment["variants"]:
        table.add_row(variant["key"], f"{variant['weight']:g}", variant.get("model") or "-")
    out.print(table)


def _show_list(experiments: list[dict[str, Any]], output_format: OutputFormat) -> None:
    out = stdout_console()
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


def _show_audit(entries: list[dict[str, Any]], output_format: OutputFormat) -> None:
    out = stdout_console()
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(entries))
        return
    from rich.table import Table

    table = Table("at", "actor", "action", "changes", title="audit log (newest first)")
    table.title_justify = "left"
    for e in entries:
        changes = "; ".join(f"{c['field']} ({c['kind']}): {c['detail']}" for c in e["changes"])
        table.add_row(str(e["at"])[:19], e["actor"], e["action"], changes or "-")
    out.print(table)


def register(app: typer.Typer) -> None:
    experiments = typer.Typer(
        help="Experiments in the assignment service (admin API). "
        "Example: splitlab experiments list --status running",
        no_args_is_help=True,
    )
    app.add_typer(experiments, name="experiments")

    @experiments.command("create")
    @requires("client")
    def create(
        file: Annotated[Path, typer.Argument(help="The experiment, as YAML or JSON.")],
        segment_attribute: SegmentAttributeOption = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Create a draft experiment from FILE (see examples/experiment.yaml).

        Example: splitlab experiments create examples/experiment.yaml --segment-attribute
        country
        """
        try:
            body = read_experiment_file(file)
            base = body.get("segment_attributes")
            with_segment_attributes(
                body, base if isinstance(base, list) else [], segment_attribute or []
            )
            _show_one(api_request("POST", "/experiments", body), output_format)
        except CommandError as exc:
            _fail(exc)

    @experiments.command("list")
    @requires("client")
    def list_(
        status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """List experiments.

        Example: splitlab experiments list --status running --format json
        """
        path = "/experiments" + (f"?status={status}" if status else "")
        try:
            _show_list(api_request("GET", path)["experiments"], output_format)
        except CommandError as exc:
            _fail(exc)

    @experiments.command("show")
    @requires("client")
    def show(key: str, output_format: FormatOption = OutputFormat.table) -> None:
        """Show one experiment.

        Example: splitlab experiments show ranker-v3
        """
        try:
            _show_one(api_request("GET", f"/experiments/{key}"), output_format)
        except CommandError as exc:
            _fail(exc)

    @experiments.command("update")
    @requires("client")
    def update(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        weight: Annotated[
            list[str] | None,
            typer.Option(
                "--weight", help="VARIANT=WEIGHT (repeatable); unnamed variants keep theirs."
            ),
        ] = None,
        coverage: Annotated[
            float | None, typer.Option(help="Share of eligible units in the experiment, [0, 1].")
        ] = None,
        file: Annotated[
            Path | None,
            typer.Option(
                "--file", "-f", help="A YAML or JSON patch: any fields of PATCH /experiments/KEY."
            ),
        ] = None,
        segment_attribute: SegmentAttributeOption = None,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Change an experiment (PATCH /experiments/KEY): ramp weights and coverage with flags,
        or any field from a patch file; the flags win over the file. A started experiment
        takes changes that keep units in place, or a reshuffle with a bucket_version bump.
        --segment-attribute adds to the experiment's segment_attributes (to remove one, give
        the whole list in a --file patch); exposures from then on record it.

        Example: splitlab experiments update ranker-v3 --weight control=0.8 --weight
        treatment=0.2 --coverage 0.5 --segment-attribute country
        """
        try:
            weights = parse_weights(weight or [])
            patch = read_experiment_file(file) if file is not None else {}
            needs_current = bool(weights) or (
                bool(segment_attribute) and "segment_attributes" not in patch
            )
            current = api_request("GET", f"/experiments/{key}") if needs_current else {"key": key}
            body = update_body(current, patch, weights, coverage, segment_attribute or [])
            _show_one(api_request("PATCH", f"/experiments/{key}", body), output_format)
        except CommandError as exc:
            _fail(exc)

    @experiments.command("audit")
    @requires("client")
    def audit(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        limit: Annotated[int, typer.Option(help="Newest entries to show, 1-1000.")] = 100,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Who changed the experiment, what and when (the registry's audit log), newest first.

        Example: splitlab experiments audit ranker-v3 --limit 20
        """
        try:
            entries = api_request("GET", f"/experiments/{key}/audit?limit={limit}")["entries"]
            _show_audit(entries, output_format)
        except CommandError as exc:
            _fail(exc)

    def action(name: str, summary: str) -> None:
        def act(key: str, output_format: FormatOption = OutputFormat.table) -> None:
            try:
                _show_one(api_request("POST", f"/experiments/{key}/{name}"), output_format)
            except CommandError as exc:
                _fail(exc)

        act.__doc__ = f"{summary}\n\nExample: splitlab experiments {name} ranker-v3"
        experiments.command(name)(requires("client")(act))

    @experiments.command("start")
    @requires("client")
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

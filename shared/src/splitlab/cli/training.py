"""``splitlab training``: the trainer's model catalogue and trainings.

``list`` and ``show`` read ``GET /models``; ``run`` queues a training (``POST /train``, admin
key) and, unless ``--no-wait``, shows a progress bar from the catalogue until every model of
it is done or failed. Reads ``SPLITLAB_TRAINER_URL`` and ``SPLITLAB_ADMIN_API_KEY``.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from splitlab.cli.experiments import CommandError, FormatOption, OutputFormat
from splitlab.cli.extras import requires

out = Console()
err = Console(stderr=True)
POLL_SECONDS = 0.5


def trainer_request(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the trainer's API; ``CommandError`` with the API's message on any failure."""
    import httpx

    from splitlab.platform.settings import load_settings

    settings = load_settings()
    headers = {}
    if settings.admin_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.admin_api_key.get_secret_value()}"
    elif method != "GET":
        raise CommandError("no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)")
    url = f"{settings.trainer_url.rstrip('/')}{path}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"cannot reach the trainer at {settings.trainer_url} ({type(exc).__name__}); "
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


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _show(models: list[dict[str, Any]], output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(models))
        return
    from rich.table import Table

    table = Table(
        "id", "experiment", "metric", "kind", "status", "family", "rows", "R2", "seconds",
        "peak MB", "in use", "trained at",
    )  # fmt: skip
    for m in models:
        status = m["status"] if m["status"] != "running" else f"running {m['progress']:.0f}%"
        memory = m["peak_memory_bytes"]
        table.add_row(
            str(m["id"]), m["experiment_key"], m["metric"], m["kind"], status,
            m["family"] or "-", str(m["rows"] or "-"), _number(m["r2"]),
            _number(m["duration_seconds"], 1), "-" if memory is None else f"{memory / 2**20:.0f}",
            "yes" if m["in_use"] else "", (m["trained_at"] or "")[:19],
        )  # fmt: skip
        if m["status"] == "failed" and m["error"]:
            table.add_row("", "", "", "", f"[red]{m['error']}[/red]")
    out.print(table)


def _wait(ids: list[int]) -> list[dict[str, Any]]:
    """Poll the catalogue until every model is done or failed, with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=err,
    ) as progress:  # fmt: skip
        bars = {i: progress.add_task(f"model {i}", total=100.0) for i in ids}
        while True:
            models = [trainer_request("GET", f"/models/{i}") for i in ids]
            for m in models:
                done = m["status"] in ("done", "failed")
                progress.update(
                    bars[m["id"]],
                    completed=100.0 if done else m["progress"],
                    description=f"model {m['id']} {m['metric']} {m['kind']} {m['status']}",
                )
            if all(m["status"] in ("done", "failed") for m in models):
                return models
            time.sleep(POLL_SECONDS)


def register(app: typer.Typer) -> None:
    training = typer.Typer(
        help="CUPAC models: the trainer's catalogue. Example: splitlab training list",
        no_args_is_help=True,
    )
    app.add_typer(training, name="training")

    @training.command("list")
    @requires("client")
    def list_(
        experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
        metric: Annotated[str | None, typer.Option(help="Only this metric.")] = None,
        status: Annotated[str | None, typer.Option(help="queued|running|done|failed")] = None,
        limit: Annotated[int, typer.Option(help="Newest this many.")] = 50,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Trained models, newest first.

        Example: splitlab training list --experiment ranker-v3 --status done
        """
        import urllib.parse

        query = {"experiment_key": experiment, "metric": metric, "status": status, "limit": limit}
        path = "/models?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        try:
            _show(trainer_request("GET", path)["models"], output_format)
        except CommandError as exc:
            _fail(exc)

    @training.command("show")
    @requires("client")
    def show(model_id: int, output_format: FormatOption = OutputFormat.json) -> None:
        """One model with every field (JSON by default).

        Example: splitlab training show 12
        """
        try:
            _show([trainer_request("GET", f"/models/{model_id}")], output_format)
        except CommandError as exc:
            _fail(exc)

    @training.command("run")
    @requires("client")
    def run(
        experiment: str,
        metric: Annotated[str | None, typer.Option(help="One metric; default: all.")] = None,
        wait: Annotated[bool, typer.Option(help="Show progress until it finishes.")] = True,
        output_format: FormatOption = OutputFormat.table,
    ) -> None:
        """Queue a training of EXPERIMENT's CUPAC models and follow it.

        Example: splitlab training run ranker-v3 --metric revenue
        """
        try:
            queued = trainer_request(
                "POST", "/train", {"experiment_key": experiment, "metric": metric}
            )
            err.print(f"task {queued['task_id']}: models {queued['model_ids']}", highlight=False)
            if not wait:
                return
            models = _wait(queued["model_ids"])
            _show(models, output_format)
            if any(m["status"] == "failed" for m in models):
                raise typer.Exit(1)
        except CommandError as exc:
            _fail(exc)

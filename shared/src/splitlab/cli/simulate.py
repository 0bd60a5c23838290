"""``splitlab simulate`` (a run of simulated users against a running SplitLab) and
``splitlab demo`` (the demo experiment ``make run`` starts, with the simulator in the
background)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from splitlab.cli.extras import requires

if TYPE_CHECKING:
    from splitlab.platform.settings import Settings
    from splitlab.simulation.driver import Endpoints

err = Console(stderr=True)
out = Console()


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _endpoints() -> tuple[Settings, Endpoints]:
    from splitlab.platform.settings import load_settings
    from splitlab.simulation.driver import Endpoints

    settings = load_settings()
    if settings.admin_api_key is None:
        _fail("no admin key: set SPLITLAB_ADMIN_API_KEY (in .env or the environment)")
    caller = settings.assign_api_key.get_secret_value() if settings.assign_api_key else None
    endpoints = Endpoints(
        assignment_url=settings.assignment_url.rstrip("/"),
        router_url=settings.router_url.rstrip("/"),
        analyzer_url=settings.analyzer_url.rstrip("/"),
        admin_key=settings.admin_api_key.get_secret_value(),
        caller_key=caller,
    )
    return settings, endpoints


def _parse_lifts(values: list[str]) -> dict[str, float]:
    lifts: dict[str, float] = {}
    for value in values:
        name, sep, factor = value.partition("=")
        try:
            lifts[name] = float(factor)
        except ValueError:
            sep = ""
        if not sep or not name:
            _fail(f"--lift: expected VARIANT=FACTOR (e.g. treatment=1.5), got {value!r}")
    return lifts


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    @requires("client")
    def simulate(
        experiment: Annotated[str, typer.Option("--experiment", "-e", help="Experiment key.")],
        users: Annotated[
            int, typer.Option(min=1, help="Users to send (the run stops then).")
        ] = 2000,
        rate: Annotated[float, typer.Option(min=0.01, help="Users arriving a second.")] = 50.0,
        duration: Annotated[float, typer.Option(min=1, help="Seconds at most.")] = 600.0,
        seed: Annotated[int, typer.Option(help="Seed of the world: the same users, outcomes.")] = 7,
        preset: Annotated[
            str, typer.Option(help="World: recommender (7% -> 11% CTR) or aa.")
        ] = "recommender",
        lift: Annotated[
            list[str] | None,
            typer.Option(help="Click lift of a variant's model, VARIANT=FACTOR (repeatable)."),
        ] = None,
        first_user: Annotated[int, typer.Option(help="Index of the first simulated user.")] = 0,
        quiet: Annotated[
            bool, typer.Option(help="No progress bar: a summary line every 10 s.")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the run's counts as JSON.")
        ] = False,
    ) -> None:
        """Send simulated users to a running SplitLab: history to /unit-features, then /predict
        (or /assign for an experiment without models) and their outcomes to /outcomes.

        Example: splitlab simulate -e demo --users 5000 --rate 100 --preset recommender
        """
        import asyncio

        import httpx

        from splitlab.simulation.demo import PRESETS
        from splitlab.simulation.driver import RunCounts, RunPlan, run, wait_until_served
        from splitlab.simulation.world import Behaviour, World

        _, endpoints = _endpoints()
        if preset not in PRESETS:
            _fail(f"--preset: one of {sorted(PRESETS)}, got {preset!r}")
        try:
            response = httpx.get(
                f"{endpoints.assignment_url}/experiments/{experiment}",
                headers=endpoints.admin_headers(),
                timeout=10,
            )
        except httpx.HTTPError as exc:
            _fail(
                f"cannot reach the assignment service ({type(exc).__name__}); is it up (`make up`)?"
            )
        if response.status_code == 404:
            _fail(f"--experiment: no experiment {experiment!r}; create it (or run `splitlab demo`)")
        response.raise_for_status()
        variants = {v["key"]: v.get("model") for v in response.json()["variants"]}
        behaviours = dict(PRESETS[preset])
        for name, factor in _parse_lifts(lift or []).items():
            if name not in variants:
                _fail(f"--lift: {name!r} is not a variant of {experiment} ({sorted(variants)})")
            try:
                behaviours[variants[name] or name] = Behaviour(click=factor)
            except ValueError as exc:
                _fail(f"--lift: {exc}")
        by_model = all(variants.values())
        world = World(seed=seed, behaviours=behaviours)
        try:
            plan = RunPlan(
                experiment, users, rate, duration, first_user=first_user, served_by_model=by_model
            )
        except ValueError as exc:
            _fail(str(exc))
        if by_model:
            models = sorted({m for m in variants.values() if m})
            try:
                asyncio.run(wait_until_served(endpoints, experiment, models))
            except TimeoutError as exc:
                _fail(str(exc))
        if quiet:
            last = [0.0]

            def report(counts: RunCounts) -> None:
                if time.monotonic() - last[0] >= 10:
                    last[0] = time.monotonic()
                    print(f"[simulate] {counts.seconds:.0f}s {counts.summary()}", flush=True)

            counts = asyncio.run(run(world, plan, endpoints, on_progress=report))
        else:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[line]}"),
            )
            with Progress(*columns, console=err, transient=False) as bar:
                task = bar.add_task("users", total=users, line="")

                def show(counts: RunCounts) -> None:
                    bar.update(
                        task, completed=counts.users + counts.failed_requests, line=counts.summary()
                    )

                counts = asyncio.run(run(world, plan, endpoints, on_progress=show))
        if as_json:
            data = asdict(counts)
            out.print_json(json.dumps(data))
        else:
            err.print(f"done in {counts.seconds:.1f} s: {counts.summary()}")
            if counts.errors:
                err.print(f"errors: {dict(counts.errors)}")

    @app.command("demo")
    @requires("platform")
    def demo(
        rate: Annotated[float, typer.Option(min=0.1, help="Simulated users a second.")] = 5.0,
        duration: Annotated[float, typer.Option(min=10, help="Seconds the simulator runs.")] = 4
        * 3600.0,
        wait: Annotated[
            float, typer.Option(min=0, help="Seconds to wait for results in every variant.")
        ] = 60.0,
    ) -> None:
        """Set up the demo (models, metrics, the experiment `demo`), start the simulator in the
        background and wait until results show units in every variant. Idempotent.

        Example: splitlab demo --rate 10
        """
        import httpx

        from splitlab.simulation.demo import DEMO_KEY, ensure_demo

        settings, endpoints = _endpoints()
        state = Path(settings.state_dir)
        try:
            setup = ensure_demo(endpoints, settings.model_store_dir)
        except (RuntimeError, httpx.HTTPError) as exc:
            _fail(f"setting up the demo failed: {exc}")
        for line in setup.created:
            err.print(f"created {line}")
        if setup.existing:
            err.print(f"reused {', '.join(setup.existing)}")
        if setup.status != "running":
            _fail(
                f"experiment {DEMO_KEY!r} is {setup.status}; the demo needs it running "
                f"(`splitlab experiments start {DEMO_KEY}`)"
            )
        pid = _start_simulator(state, rate, duration)
        log = state / "logs" / "simulator.log"
        err.print(f"simulator running (pid {pid}, {rate:g} users/s, log {log})")
        deadline = time.monotonic() + wait
        units: dict[str, int] = {}
        while time.monotonic() < deadline:
            # A refresh, not a read: a read answers from the results cache, which keeps an
            # answer from before the first unit of a variant arrived for its whole TTL (60 s).
            response = httpx.post(
                f"{endpoints.analyzer_url}/experiments/{DEMO_KEY}/refresh",
                headers=endpoints.admin_headers(),
                timeout=30,
            )
            if response.status_code == 200:
                units = response.json()["sample"]["units"]
                if all(units.get(v, 0) > 0 for v in ("control", "treatment")):
                    break
            time.sleep(2)
        else:
            _fail(
                f"no results with units in every variant within {wait:.0f} s; see {state / 'logs'}"
            )
        err.print(f"results: units {units}")
        a, r = settings.analyzer_url, settings.router_url
        typer.echo(
            "\nThe demo experiment is live:\n"
            f"  results        splitlab results {DEMO_KEY}  ({a}/experiments/{DEMO_KEY}/results)\n"
            f"  API docs       {settings.assignment_url}/docs  {r}/docs  {a}/docs\n"
            f"  Prometheus     {settings.prometheus_url}/graph?g0.expr=splitlab_experiment_units\n"
            f"  stop the demo  make down (or kill $(cat {state / 'run' / 'simulator.pid'}))"
        )


def _start_simulator(state: Path, rate: float, duration: float) -> int:
    """The demo's simulator in the background, unless one is running already."""
    run_dir, logs = state / "run", state / "logs"
    run_dir.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / "simulator.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text().strip() or 0)
        try:
            os.kill(pid, 0)
            return pid
        except (ProcessLookupError, PermissionError):
            pass
    from splitlab.simulation.demo import DEMO_KEY

    users = int(rate * duration) + 1
    # A new run continues with new users (a returning user index is harmless: the same unit).
    first = int(time.time()) % 10**8 * 10
    command = [
        sys.executable,
        "-m",
        "splitlab",
        "simulate",
        "--experiment",
        DEMO_KEY,
        "--users",
        str(users),
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--first-user",
        str(first),
        "--quiet",
    ]
    with (logs / "simulator.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    return process.pid

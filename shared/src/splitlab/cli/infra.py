"""Operations commands: ``splitlab db upgrade``, ``splitlab kafka create-topics``,
``splitlab ready``."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from splitlab.cli.extras import requires

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    db = typer.Typer(
        help="The Postgres schema (Alembic migrations). Example: splitlab db upgrade",
        no_args_is_help=True,
    )
    kafka = typer.Typer(
        help="Kafka topics. Example: splitlab kafka create-topics", no_args_is_help=True
    )
    app.add_typer(db, name="db")
    app.add_typer(kafka, name="kafka")

    @db.command("upgrade")
    @requires("platform")
    def db_upgrade(
        revision: str = typer.Argument("head", help="Target revision."),
        database_url: str = typer.Option(
            None, envvar="SPLITLAB_DATABASE_URL", help="Defaults to the settings' database_url."
        ),
    ) -> None:
        """Migrate the database to REVISION (default: head). Safe to run again.

        Example: splitlab db upgrade head
        """
        from splitlab.platform.settings import load_settings
        from splitlab.platform.storage.migrate import upgrade

        url = database_url or load_settings().database_url
        upgrade(url, revision)
        console.print(f"database migrated to {revision}")

    @kafka.command("create-topics")
    @requires("platform")
    def create_topics() -> None:
        """Create SplitLab's topics where missing (partitions: SPLITLAB_KAFKA_TOPIC_PARTITIONS).

        Example: splitlab kafka create-topics
        """
        from splitlab.contracts.topics import ALL_TOPICS
        from splitlab.platform.messaging.admin import ensure_topics
        from splitlab.platform.settings import load_settings

        created = ensure_topics(load_settings())
        for topic in ALL_TOPICS:
            console.print(f"{topic}: {'created' if topic in created else 'exists'}")

    @app.command("ready")
    @requires("client")
    def ready(
        timeout: float = typer.Option(90.0, help="Seconds to wait for every service."),
        service: list[str] = typer.Option(  # noqa: B008
            ["assignment", "router", "analyzer", "trainer"], help="Services to wait for."
        ),
    ) -> None:
        """Wait until every service's /readyz answers 200; print what is still down otherwise.

        Example: splitlab ready --timeout 30 --service assignment --service analyzer
        """
        import httpx

        from splitlab.platform.settings import load_settings

        settings = load_settings()
        urls = {name: getattr(settings, f"{name}_url") for name in service}
        deadline = time.monotonic() + timeout
        pending = dict(urls)
        last: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                try:
                    response = httpx.get(f"{url}/readyz", timeout=5.0)
                except httpx.HTTPError as exc:
                    last[name] = f"not answering ({type(exc).__name__})"
                    continue
                if response.status_code == 200:
                    console.print(f"{name} ready at {url}")
                    del pending[name]
                else:
                    last[name] = f"{response.status_code}: down {response.json().get('down')}"
            if pending:
                time.sleep(0.5)
        if pending:
            for name in pending:
                console.print(f"[red]{name} not ready[/red]: {last.get(name, 'no answer')}")
            raise typer.Exit(1)

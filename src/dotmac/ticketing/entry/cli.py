"""The ``ticketing`` command: production processes and the development loop.

Each command builds ``Settings`` once and hands it down; the work itself
lives in the modules it calls.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dotmac.ticketing.entry.children import Child, cli_command, supervise_children
from dotmac.ticketing.entry.embedded import (
    EmbeddedPostgres,
    load_or_create_jwt_secret,
    start_embedded_postgres,
)
from dotmac.ticketing.entry.processes import (
    API_FACTORY,
    api_app,
    kafka_security,
    projection_worker,
    serve_worker,
    settings_environment,
    supervision,
)
from dotmac.ticketing.projections.analytics import grant_analyst
from dotmac.ticketing.projections.registry import Build, BuildRegistry
from dotmac.ticketing.projections.status import PROJECTIONS, projection_statuses
from dotmac.ticketing.service.auth import DEFAULT_TOKEN_TTL, Role, issue_token
from dotmac.ticketing.service.logging import configure_logging
from dotmac.ticketing.service.settings import WORKER_NAMES, Settings
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env
from dotmac.ticketing.store.schema_migrations import (
    SchemaBehind,
    migrate,
    require_current_schema,
    schema_status,
)

if TYPE_CHECKING:
    from dotmac.ticketing.consumers.kafka.broker import DevBroker

DEV_TENANT = "dev"
# Printed by `ticketing dev` so a developer can call the API straight away.
DEV_PRINCIPALS = (
    ("dev-admin", Role.ADMIN),
    ("dev-agent", Role.AGENT),
    ("dev-customer", Role.CUSTOMER),
)

app = typer.Typer(
    help="Multi-tenant, event-sourced support-ticketing service.",
    no_args_is_help=True,
    add_completion=False,
)
worker_app = typer.Typer(help="Run one background worker alone.", no_args_is_help=True)
projections_app = typer.Typer(
    help="Inspect and rebuild read models.", no_args_is_help=True
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
app.add_typer(worker_app, name="worker")
app.add_typer(projections_app, name="projections")
app.add_typer(db_app, name="db")


def _fail(message: str) -> NoReturn:
    # soft_wrap: an operator greps the log for the command it names; a line
    # broken at the terminal width would split it.
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {message}", highlight=False
    )
    raise typer.Exit(code=2)


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        _fail(f"invalid configuration:\n{error}")


def _exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM unwind the stack like Ctrl-C does, running ``finally``.

    uvicorn shuts down gracefully on SIGTERM and then re-raises the signal
    under the previous handler; with Python's default one the process dies
    on the spot and the embedded database is left running.
    """

    def exit_zero(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, exit_zero)


UVICORN_OPTIONS: dict[str, Any] = {
    # Our logging setup renders uvicorn's records; RequestContextMiddleware
    # writes the one line per request, so uvicorn's access line would only
    # repeat it without the request id.
    "log_config": None,
    "access_log": False,
    # No "server: uvicorn": it tells a prober which exploits to try and no
    # client needs it.
    "server_header": False,
}


def _grace(app_settings: Settings) -> int | None:
    """uvicorn's wait for requests in flight on SIGTERM (whole seconds)."""
    seconds = app_settings.shutdown_grace_seconds
    return max(1, round(seconds)) if seconds else None


def _serve(app_settings: Settings) -> None:
    """The API in this process."""
    application, core = api_app(app_settings)
    try:
        uvicorn.run(
            application,
            host=app_settings.host,
            port=app_settings.port,
            timeout_graceful_shutdown=_grace(app_settings),
            **UVICORN_OPTIONS,
        )
    finally:
        core.close()


def _serve_processes(app_settings: Settings) -> None:
    """The API in ``api_worker_count`` processes sharing the listening socket.

    uvicorn's supervisor (this process) restarts a worker that dies and
    stops them all on SIGTERM or Ctrl-C; each builds its app from the
    environment (``api_from_environment``), which is why no settings but
    the environment's reach them.
    """
    with shared_metrics_directory():
        uvicorn.run(
            API_FACTORY,
            factory=True,
            workers=app_settings.api_worker_count,
            host=app_settings.host,
            port=app_settings.port,
            timeout_graceful_shutdown=_grace(app_settings),
            **UVICORN_OPTIONS,
        )


@contextmanager
def shared_metrics_directory() -> Iterator[None]:
    """A directory the API's processes write their metrics to (for /metrics).

    prometheus-client's multiprocess mode: the workers, started after this,
    find it in their environment. One an operator set is kept (it must be
    emptied between runs, as prometheus-client says); ours is removed.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="ticketing-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(directory, ignore_errors=True)


def _dev_token_ttl(settings: Settings) -> timedelta:
    # Twelve hours (a working day), unless the service accepts less.
    return min(DEFAULT_TOKEN_TTL, timedelta(seconds=settings.jwt_max_lifetime_seconds))


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant the token is valid for.")],
    sub: Annotated[str, typer.Option(help="Subject: the user or service id.")],
    role: Annotated[list[Role], typer.Option(help="A role; repeat for several.")],
    ttl_hours: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="Lifetime in hours (default: 12, or the accepted maximum if shorter).",
        ),
    ] = None,
) -> None:
    """Print an HS256 bearer token signed with the configured secret.

    It carries the configured issuer and audience, so the service accepts it.
    """
    settings = _load_settings()
    ttl = _dev_token_ttl(settings) if ttl_hours is None else timedelta(hours=ttl_hours)
    if ttl.total_seconds() > settings.jwt_max_lifetime_seconds:
        _fail(
            f"--ttl-hours {ttl_hours:g} is longer than the service accepts "
            f"(TICKETING_JWT_MAX_LIFETIME_SECONDS={settings.jwt_max_lifetime_seconds})"
        )
    secret = settings.jwt_secret or load_or_create_jwt_secret(settings.data_dir)
    typer.echo(
        issue_token(
            secret,
            tenant_id=tenant,
            sub=sub,
            roles=role,
            ttl=ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )


@app.command()
def api(
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes to serve from, each with its own database pool"
            " (default: TICKETING_API_WORKERS, or one per core).",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (production: external PostgreSQL, configured keys)."""
    settings = _load_settings()
    if workers is not None:
        settings = settings.model_copy(update={"api_workers": workers})
    if settings.database_url is None:
        _fail("DATABASE_URL is required (use `ticketing dev` for a local run)")
    if (
        settings.jwt_secret is None
        and settings.jwt_public_key is None
        and settings.jwt_jwks_url is None
    ):
        _fail(
            "TICKETING_JWT_SECRET, TICKETING_JWT_PUBLIC_KEY or "
            "TICKETING_JWT_JWKS_URL is required"
        )
    configure_logging(settings.log_format, settings.log_level, process="api")
    _require_current_schema(settings.database_url)
    _exit_cleanly_on_sigterm()
    if settings.api_worker_count == 1:
        _serve(settings)
    else:
        _serve_processes(settings)


@app.command()
def dev() -> None:
    """Run everything locally on embedded defaults (what `make run` starts).

    The API and each worker run as child processes of this one, which
    restarts any that exits and stops them all on Ctrl-C or SIGTERM.
    """
    settings = _load_settings()
    configure_logging(settings.log_format, settings.log_level, process="dev")
    _exit_cleanly_on_sigterm()
    embedded: EmbeddedPostgres | None = None
    broker: DevBroker | None = None
    # What this process chose for its children, who read it from their
    # environment as production processes do.
    chosen: dict[str, Any] = {}

    def choose(**values: Any) -> Settings:
        chosen.update(values)
        return settings.model_copy(update=values)

    try:
        if settings.database_url is None:
            embedded = start_embedded_postgres(settings.data_dir)
            settings = choose(database_url=embedded.url)
        assert settings.database_url is not None
        # A development convenience: production runs `ticketing db migrate`
        # as a deployment step, and its processes only check.
        migrate(settings.database_url)
        secret = settings.jwt_secret or load_or_create_jwt_secret(settings.data_dir)
        settings = choose(jwt_secret=secret)
        # Imported here: the Kafka side is for `dev` and the workers only.
        from dotmac.ticketing.consumers.kafka.broker import (
            TopicMismatch,
            prepare_topics,
            start_dev_broker,
        )
        from dotmac.ticketing.consumers.kafka.topics import service_topics

        if settings.kafka_bootstrap_servers is None:
            broker = start_dev_broker(log_path=settings.data_dir / "kafka.log")
            settings = choose(
                kafka_bootstrap_servers=broker.bootstrap_servers,
                # The bundled broker holds fetches for the full wait.
                kafka_fetch_max_wait_ms=min(settings.kafka_fetch_max_wait_ms, 20),
                # It keeps nothing across restarts: a topic it created
                # with its default partitions holds only what the relay
                # publishes again.
                kafka_recreate_mismatched_topics=True,
            )
        assert settings.kafka_bootstrap_servers is not None
        try:
            asyncio.run(
                prepare_topics(
                    settings.kafka_bootstrap_servers,
                    service_topics(settings.kafka_partitions),
                    recreate_mismatched=settings.kafka_recreate_mismatched_topics,
                    security=kafka_security(settings),
                )
            )
        except TopicMismatch as error:
            _fail(str(error))
        if settings.ready_workers is None:
            # All of them run here: one that has not reported is not ready.
            settings = choose(ready_workers=",".join(WORKER_NAMES))
        _print_dev_banner(settings, secret, embedded)
        supervise_children(
            [Child("api", cli_command("api"))]
            + [
                Child(
                    name,
                    cli_command("worker", name),
                    {"TICKETING_METRICS_PORT": str(metrics_port)},
                )
                for name, metrics_port in worker_metrics_ports(settings.metrics_port)
            ],
            {**os.environ, **settings_environment(chosen)},
            backoff=supervision(settings).backoff,
        )
    finally:
        # Last: the children have stopped using them.
        if broker is not None:
            broker.stop()
        # Stops the server but keeps its data for the next run.
        if embedded is not None:
            embedded.stop()


def worker_metrics_ports(first: int) -> list[tuple[str, int]]:
    """Each worker of ``ticketing dev`` and its metrics port (0: none): on one
    host they need one each."""
    return [
        (name, first + index if first else 0) for index, name in enumerate(WORKER_NAMES)
    ]


def _database_settings(*, migrated: bool = True, process: str = "cli") -> Settings:
    """The settings of a command that needs the database (migrated, unless not).

    ``process`` is the role its log lines carry.
    """
    settings = _load_settings()
    if settings.database_url is None:
        _fail("DATABASE_URL is required")
    configure_logging(settings.log_format, settings.log_level, process=process)
    if migrated:
        _require_current_schema(settings.database_url)
    return settings


def _require_current_schema(database_url: str) -> None:
    """Exit (code 2) with the command to run when migrations are pending."""
    try:
        require_current_schema(database_url)
    except SchemaBehind as error:
        _fail(str(error))


def _kafka_worker_settings(name: str) -> Settings:
    """A Kafka-side worker's settings: it needs the database and the brokers."""
    settings = _database_settings(process=name)
    if settings.kafka_bootstrap_servers is None:
        _fail("KAFKA_BOOTSTRAP_SERVERS is required")
    return settings


@worker_app.command("projections")
def worker_projections() -> None:
    """Keep the read models up to date (and rebuild them when needed)."""
    settings = _database_settings(process="projections")
    serve_worker("projections", settings)


@worker_app.command("notifier")
def worker_notifier() -> None:
    """Tell people about ticket events: e-mail, SMS, in-app rows, webhooks."""
    settings = _kafka_worker_settings("notifier")
    serve_worker("notifier", settings)


@worker_app.command("timers")
def worker_timers() -> None:
    """Keep SLA and escalation deadlines and fire them (any number of replicas)."""
    settings = _kafka_worker_settings("timers")
    serve_worker("timers", settings)


@worker_app.command("workflows")
def worker_workflows() -> None:
    """Run the automatic steps of each ticket's workflow (any number of replicas)."""
    settings = _kafka_worker_settings("workflows")
    serve_worker("workflows", settings)


@worker_app.command("mail-in")
def worker_mail_in() -> None:
    """Read the tenants' IMAP mailboxes into tickets and comments (IDLE or polling)."""
    settings = _database_settings(process="mail-in")
    serve_worker("mail-in", settings)


@worker_app.command("relay")
def worker_relay() -> None:
    """Publish every stored event to Kafka (ticketing.ticket-events.v1)."""
    settings = _kafka_worker_settings("relay")
    serve_worker("relay", settings)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="Projection to rebuild.")] = "tickets",
) -> None:
    """Rebuild a projection from position zero and swap it in when caught up.

    The API keeps serving the current tables meanwhile. If a projection
    worker is running, it does the rebuild and this command shows progress.
    """
    if name not in PROJECTIONS:
        _fail(f"unknown projection {name!r}; known: {', '.join(PROJECTIONS)}")
    settings = _database_settings()
    with Progress(
        TextColumn("[bold]rebuilding {task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("rebuild", name=name, total=None)

        def show(position: int, head: int) -> None:
            progress.update(task, completed=position, total=max(head, 1))

        worker, ticket_app = projection_worker(settings, on_progress=show)
        try:
            registry = BuildRegistry(ticket_app.datastore)
            before = registry.active(name)
            registry.request_rebuild(name)
            stop = threading.Event()
            if not worker.run(stop, until_swapped=True, wait_for_lock=False):
                _watch_rebuild(ticket_app, name, before, show)
        finally:
            ticket_app.close()
    typer.echo(f"{name}: rebuilt and swapped in")


def _watch_rebuild(
    ticket_app: TicketApplication,
    name: str,
    before: Build | None,
    show: Callable[[int, int], None],
) -> None:
    """Follow a rebuild that the running worker performs."""
    while True:
        (status,) = [
            s for s in projection_statuses(ticket_app.datastore) if s.name == name
        ]
        if status.rebuild_position is not None:
            show(status.rebuild_position, status.head)
        swapped = before is None or status.active_schema != before.schema
        if swapped and status.rebuilding_schema is None:
            show(status.head, status.head)
            return
        time.sleep(0.25)


@projections_app.command("status")
def projections_status() -> None:
    """Show each projection's position, the head of the log, and the lag."""
    settings = _database_settings()
    ticket_app = TicketApplication(
        eventsourcing_env(settings.database_url or "", pool_size=1)
    )
    try:
        table = Table(
            "projection", "version", "schema", "position", "head", "lag", "rebuilding"
        )
        for s in projection_statuses(ticket_app.datastore):
            table.add_row(
                s.name,
                str(s.active_version),
                s.active_schema or "-",
                str(s.position),
                str(s.head),
                str(s.lag),
                s.rebuilding_schema or "-",
            )
        Console().print(table)
    finally:
        ticket_app.close()


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the pending schema migrations (idempotent; safe to run concurrently).

    Run it before starting a new release's processes: they refuse to start
    while a migration is pending. A database created before migrations
    existed is adopted as it is.
    """
    settings = _database_settings(migrated=False)
    assert settings.database_url is not None
    applied = migrate(settings.database_url)
    for migration in applied:
        typer.echo(f"applied {migration}")
    typer.echo(
        f"{len(applied)} migration(s) applied; the schema is up to date"
        if applied
        else "nothing to apply; the schema is up to date"
    )


@db_app.command("status")
def db_status() -> None:
    """List the schema migrations: applied or pending (exit code 1 if pending)."""
    settings = _database_settings(migrated=False)
    assert settings.database_url is not None
    status = schema_status(settings.database_url)
    table = Table("migration", "state")
    for migration in status.applied:
        table.add_row(migration, "applied")
    for migration in status.pending:
        table.add_row(migration, "pending")
    for migration in status.unknown:
        table.add_row(migration, "applied (not in this release)")
    Console().print(table)
    if status.pending:
        typer.echo(f"{len(status.pending)} pending: run `ticketing db migrate`")
        raise typer.Exit(code=1)


@db_app.command("grant-analyst")
def db_grant_analyst(
    role: Annotated[str, typer.Argument(help="Role to create or grant to.")],
) -> None:
    """Give ROLE read-only access to the `analytics` views (and nothing else)."""
    settings = _database_settings()
    ticket_app = TicketApplication(
        eventsourcing_env(settings.database_url or "", pool_size=1)
    )
    try:
        grant_analyst(ticket_app.datastore, role)
    finally:
        ticket_app.close()
    typer.echo(f"{role}: may read the analytics views")


@app.command("asyncapi")
def asyncapi(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: stdout)."),
    ] = None,
) -> None:
    """Print the AsyncAPI 3 document of the ticket event topic."""
    from dotmac.ticketing.consumers.kafka.asyncapi import render_asyncapi

    document = render_asyncapi()
    if output is None:
        typer.echo(document, nl=False)
    else:
        output.write_text(document, encoding="utf-8")


@app.command("docs")
def docs(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Directory of the reference pages."),
    ] = Path("docs/reference"),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if a page differs from the code."
        ),
    ] = False,
) -> None:
    """Write the reference pages generated from the code (docs/reference/)."""
    from dotmac.ticketing.entry.reference_docs import stale_pages, write_pages

    if check:
        stale = stale_pages(output)
        for path in stale:
            typer.echo(f"{path}: differs from the code; run `ticketing docs`")
        if stale:
            raise typer.Exit(code=1)
        typer.echo(f"{output}: up to date")
        return
    written = write_pages(output)
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo(f"{output}: up to date")


def _print_dev_banner(
    settings: Settings, secret: str, embedded: EmbeddedPostgres | None
) -> None:
    console = Console()
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    base_url = f"http://{shown_host}:{settings.port}"
    database = (
        f"embedded PostgreSQL in {settings.data_dir / 'postgres'}"
        if embedded is not None
        else "DATABASE_URL"
    )
    if settings.api_docs:
        console.print(f"[bold]API docs[/]  {base_url}/docs", highlight=False)
    console.print(f"[bold]database[/]  {database}", highlight=False)
    console.print(
        f"[bold]kafka[/]     {settings.kafka_bootstrap_servers}"
        " (topic ticketing.ticket-events.v1)",
        highlight=False,
    )
    console.print(
        f"Development tokens for tenant [bold]{DEV_TENANT}[/] "
        "(send as `Authorization: Bearer <token>`):",
        highlight=False,
    )
    for sub, role in DEV_PRINCIPALS:
        bearer = issue_token(
            secret,
            tenant_id=DEV_TENANT,
            sub=sub,
            roles=[role],
            ttl=_dev_token_ttl(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        # soft_wrap: no line breaks inside a token, so it stays copyable.
        console.print(
            f"[bold]{role.value:>8}[/]  {bearer}", highlight=False, soft_wrap=True
        )


def main() -> None:
    """Console-script entry point (``ticketing``)."""
    app()


if __name__ == "__main__":
    main()

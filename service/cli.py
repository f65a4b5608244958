"""The ``ticketing`` command: production processes and the development loop.

Each command builds ``Settings`` once and hands it down; the work itself
lives in the modules it calls.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from types import FrameType
from typing import Annotated, NoReturn

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from service.auth import Role, issue_token
from service.embedded import (
    EmbeddedPostgres,
    load_or_create_jwt_secret,
    start_embedded_postgres,
)
from service.logging import configure_logging
from service.settings import Settings

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


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
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


def _serve(app_settings: Settings) -> None:
    from service.api.app import create_app  # the API pulls in the whole stack

    uvicorn.run(
        create_app(app_settings),
        host=app_settings.host,
        port=app_settings.port,
        # Our logging setup renders uvicorn's records; RequestContextMiddleware
        # writes the one line per request, so uvicorn's access line would
        # only repeat it without the request id.
        log_config=None,
        access_log=False,
    )


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant the token is valid for.")],
    sub: Annotated[str, typer.Option(help="Subject: the user or service id.")],
    role: Annotated[list[Role], typer.Option(help="A role; repeat for several.")],
    ttl_hours: Annotated[float, typer.Option(min=0.01, help="Lifetime in hours.")] = 12,
) -> None:
    """Print an HS256 bearer token signed with the configured secret."""
    settings = _load_settings()
    secret = settings.jwt_secret or load_or_create_jwt_secret(settings.data_dir)
    typer.echo(
        issue_token(
            secret,
            tenant_id=tenant,
            sub=sub,
            roles=role,
            ttl=timedelta(hours=ttl_hours),
        )
    )


@app.command()
def api() -> None:
    """Run the HTTP API (production: external PostgreSQL, configured keys)."""
    settings = _load_settings()
    if settings.database_url is None:
        _fail("DATABASE_URL is required (use `ticketing dev` for a local run)")
    if settings.jwt_secret is None and settings.jwt_public_key is None:
        _fail("TICKETING_JWT_SECRET or TICKETING_JWT_PUBLIC_KEY is required")
    configure_logging(settings.log_format, settings.log_level)
    _exit_cleanly_on_sigterm()
    _serve(settings)


@app.command()
def dev() -> None:
    """Run everything locally on embedded defaults (what `make run` starts)."""
    settings = _load_settings()
    configure_logging(settings.log_format, settings.log_level)
    _exit_cleanly_on_sigterm()
    embedded: EmbeddedPostgres | None = None
    try:
        if settings.database_url is None:
            embedded = start_embedded_postgres(settings.data_dir)
            settings = settings.model_copy(update={"database_url": embedded.url})
        secret = settings.jwt_secret or load_or_create_jwt_secret(settings.data_dir)
        settings = settings.model_copy(update={"jwt_secret": secret})
        _print_dev_banner(settings, secret, embedded)
        _serve(settings)
    finally:
        # Stops the server but keeps its data for the next run.
        if embedded is not None:
            embedded.stop()


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
    console.print(f"[bold]API docs[/]  {base_url}/docs", highlight=False)
    console.print(f"[bold]database[/]  {database}", highlight=False)
    console.print(
        f"Development tokens for tenant [bold]{DEV_TENANT}[/] "
        "(send as `Authorization: Bearer <token>`):",
        highlight=False,
    )
    for sub, role in DEV_PRINCIPALS:
        bearer = issue_token(secret, tenant_id=DEV_TENANT, sub=sub, roles=[role])
        # soft_wrap: no line breaks inside a token, so it stays copyable.
        console.print(
            f"[bold]{role.value:>8}[/]  {bearer}", highlight=False, soft_wrap=True
        )


def main() -> None:
    """Console-script entry point (``ticketing``)."""
    app()

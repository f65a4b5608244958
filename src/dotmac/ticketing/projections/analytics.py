"""The ``analytics`` schema: analysts' views over the active build, and their role.

The views read the active build's tables by name, so they must follow each
swap: :func:`point_analytics_views` is the registry's ``on_swap`` hook and
re-creates them inside the swap transaction (analysts see the old build or
the new one, never neither). Wire it into every :class:`ProjectionWorker`:
the retired build is dropped with ``CASCADE``, which takes views still
pointing at it along.

Re-created views lose their grants, so the roles given access are recorded
in ``public.analytics_grants`` and granted again at each swap. That table
and the ``analytics`` schema are created by migration 0001; the views are
not (they name the active build's schema).

Views run with their owner's rights: an analyst role needs SELECT on the
views only, and gets no access to the events or the build schemas.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, sql

from dotmac.ticketing.projections.analytics_views import SCHEMA, VIEWS, AnalyticsView

PROJECTION = "tickets"

# Swaps, grants and re-pointing serialize on this lock: a role granted
# while a swap re-creates the views still ends up with access to them.
LOCK_KEY = "ticketing-analytics"

# Names PostgreSQL treats specially in GRANT (``public`` is everyone).
RESERVED_ROLE_NAMES = frozenset(
    {"public", "none", "current_user", "current_role", "session_user"}
)


def point_analytics_views(cur: Cursor[Any], schema: str) -> None:
    """Re-create the analytics views over ``schema``'s tables (``OnSwap``).

    Runs in the caller's transaction; re-applies the recorded grants.
    """
    _lock(cur)
    _create_views(cur, schema)
    cur.execute(
        "SELECT g.role FROM public.analytics_grants g"
        " JOIN pg_roles r ON r.rolname = g.role ORDER BY g.role"
    )
    # A recorded role dropped since is skipped: GRANT would fail the swap.
    for row in cur.fetchall():
        _grant_views(cur, str(row["role"]))


def grant_analyst(datastore: PostgresDatastore, role: str) -> None:
    """Give ``role`` read access to the analytics views, and nothing else.

    Creates the role (NOLOGIN) when it does not exist; an administrator
    then lets people in with ``GRANT role TO someone`` or ``ALTER ROLE role
    LOGIN PASSWORD ...``. Needs a database user allowed to create roles.
    Idempotent. If the views are missing while a build is active (say it
    was swapped in before the views existed), they are created first.
    """
    _check_role_name(role)
    with datastore.transaction(commit=True) as cur:
        # Row lock before the advisory lock: the order a swap takes them in.
        schema = _lock_active_build(cur)
        _lock(cur)
        if schema is not None and not _views_exist(cur):
            _create_views(cur, schema)
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,))
        existing = cur.fetchone()
        if existing is None:
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        elif existing["rolsuper"]:
            raise ValueError(f"{role} is a superuser: it cannot be made read-only")
        cur.execute(
            "INSERT INTO public.analytics_grants (role) VALUES (%s)"
            " ON CONFLICT (role) DO NOTHING",
            (role,),
        )
        _grant_views(cur, role)


def repoint_analytics_views(datastore: PostgresDatastore) -> str | None:
    """Point the views at the active build now; returns its schema.

    For a deployment whose active build was swapped in without the hook
    (before this module existed): call it once at start-up. Returns None,
    changing nothing, while no build is active.
    """
    with datastore.transaction(commit=True) as cur:
        schema = _lock_active_build(cur)
        if schema is not None:
            point_analytics_views(cur, schema)
    return schema


# -- internals -------------------------------------------------------------


def _lock(cur: Cursor[Any]) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))


def _lock_active_build(cur: Cursor[Any]) -> str | None:
    """The active build's schema, locked against a swap until commit."""
    cur.execute("SELECT to_regclass('public.projection_builds') IS NOT NULL AS ok")
    row = cur.fetchone()
    if not row or not row["ok"]:
        return None
    cur.execute(
        "SELECT schema_name FROM public.projection_builds"
        " WHERE projection = %s AND state = 'active' FOR SHARE",
        (PROJECTION,),
    )
    row = cur.fetchone()
    return str(row["schema_name"]) if row else None


def _views_exist(cur: Cursor[Any]) -> bool:
    cur.execute(
        "SELECT count(*) AS n FROM pg_views WHERE schemaname = %s"
        " AND viewname = ANY(%s)",
        (SCHEMA, [view.name for view in VIEWS]),
    )
    row = cur.fetchone()
    return bool(row and row["n"] == len(VIEWS))


def _create_views(cur: Cursor[Any], build: str) -> None:
    # CASCADE: a view an administrator built on ours must not block a swap;
    # the views are documented as re-created at every swap.
    for view in reversed(VIEWS):
        cur.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(_qualified(view)))
    for view in VIEWS:
        select = sql.SQL(view.select).format(
            build=sql.Identifier(build), analytics=_schema()
        )
        cur.execute(sql.SQL("CREATE VIEW {} AS {}").format(_qualified(view), select))
        _comment(cur, view)


def _comment(cur: Cursor[Any], view: AnalyticsView) -> None:
    cur.execute(
        sql.SQL("COMMENT ON VIEW {} IS {}").format(
            _qualified(view), sql.Literal(view.comment)
        )
    )
    for column, _type, text in view.columns:
        cur.execute(
            sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                _qualified(view), sql.Identifier(column), sql.Literal(text)
            )
        )


def _grant_views(cur: Cursor[Any], role: str) -> None:
    grantee = sql.Identifier(role)
    cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_schema(), grantee))
    cur.execute(
        "SELECT viewname FROM pg_views WHERE schemaname = %s AND viewname = ANY(%s)",
        (SCHEMA, [view.name for view in VIEWS]),
    )
    # Only the documented views, and only those there now (before the first
    # swap there are none; the swap grants them).
    names = [row["viewname"] for row in cur.fetchall()]
    for name in names:
        cur.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(SCHEMA, name), grantee
            )
        )


def _check_role_name(role: str) -> None:
    if not role or len(role.encode()) > 63:
        raise ValueError("a role name has 1 to 63 bytes")
    if role.lower() in RESERVED_ROLE_NAMES or role.lower().startswith("pg_"):
        raise ValueError(f"{role!r} is a reserved role name")


def _schema() -> sql.Identifier:
    return sql.Identifier(SCHEMA)


def _qualified(view: AnalyticsView) -> sql.Identifier:
    return sql.Identifier(SCHEMA, view.name)

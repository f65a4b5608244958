"""Saved views: named ticket lists, personal or shared with a team or tenant.

A view stores the filters and sort of ``GET /tickets/`` (the same validated
model, ``schemas.ticket_filters``), so opening it is that list, and ``me``
in it means whoever opens it. Who sees one:

- ``personal``: its owner;
- ``team``: the members of its team (``teams[].agents`` of the tenant
  settings, read when asked, so leaving the team hides its views) and the
  tenant's admins;
- ``tenant``: all the tenant's staff.

Customers have no views. A view the caller may not see is "not found",
like another tenant's. Its owner or an admin changes or deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.projections.read_model import ProjectionNotReady, ReadModel
from dotmac.ticketing.projections.ticket_queries import count_tickets
from dotmac.ticketing.schemas.ticket_filters import TicketListFilter
from dotmac.ticketing.schemas.views import ViewCreate
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, ViewNotFound
from dotmac.ticketing.service.ticket_lists import ticket_filter

_COLUMNS = (
    "view_id, name, owner_id, shared, team, filters, sort, created_at, updated_at"
)


@dataclass(frozen=True)
class SavedView:
    id: UUID
    name: str
    owner_id: str
    shared: str
    team: str | None
    filters: TicketListFilter
    sort: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SavedView:
        return cls(
            id=row["view_id"],
            name=row["name"],
            owner_id=row["owner_id"],
            shared=row["shared"],
            team=row["team"],
            filters=TicketListFilter.model_validate(row["filters"]),
            sort=row["sort"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def visible_to(self, ctx: RequestContext, config: TenantConfig) -> bool:
        if self.shared == "tenant":
            return True
        if self.shared == "team":
            return ctx.has_role("admin") or _member(ctx, config, self.team)
        return self.owner_id == ctx.user_id

    def changeable_by(self, ctx: RequestContext) -> bool:
        return self.owner_id == ctx.user_id or ctx.has_role("admin")


def _member(ctx: RequestContext, config: TenantConfig, team: str | None) -> bool:
    found = config.team(team) if team is not None else None
    return found is not None and any(a.id == ctx.user_id for a in found.agents)


class SavedViews:
    """The tenant's views over a datastore pool; counts from the read model."""

    def __init__(
        self,
        datastore: Any,
        read_model: ReadModel,
        tenant_config: Callable[[str], TenantConfig],
        clock: Callable[[], datetime],
    ) -> None:
        self._datastore = datastore
        self._read_model = read_model
        self._tenant_config = tenant_config
        self._clock = clock

    def create(self, ctx: RequestContext, body: ViewCreate) -> SavedView:
        _require_staff(ctx)
        self._check_sharing(ctx, body)
        now = self._clock()
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                f"INSERT INTO saved_views (tenant_id, {_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (
                    ctx.tenant_id,
                    uuid4(),
                    body.name,
                    ctx.user_id,
                    body.shared,
                    body.team if body.shared == "team" else None,
                    Jsonb(_stored(body.filters)),
                    body.sort,
                    now,
                    now,
                ),
            )
            row = cur.fetchone()
        return SavedView.from_row(row)

    def visible(self, ctx: RequestContext) -> list[SavedView]:
        """The views the caller sees, by name."""
        _require_staff(ctx)
        config = self._tenant_config(ctx.tenant_id)
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM saved_views WHERE tenant_id = %s"
                " AND (shared <> 'personal' OR owner_id = %s)"
                " ORDER BY lower(name), view_id",
                (ctx.tenant_id, ctx.user_id),
            )
            rows = cur.fetchall()
        views = [SavedView.from_row(row) for row in rows]
        return [v for v in views if v.visible_to(ctx, config)]

    def get(self, ctx: RequestContext, view_id: UUID) -> SavedView:
        _require_staff(ctx)
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM saved_views"
                " WHERE tenant_id = %s AND view_id = %s",
                (ctx.tenant_id, view_id),
            )
            row = cur.fetchone()
        if row is None:
            raise ViewNotFound(view_id)
        view = SavedView.from_row(row)
        if not view.visible_to(ctx, self._tenant_config(ctx.tenant_id)):
            raise ViewNotFound(view_id)
        return view

    def replace(
        self, ctx: RequestContext, view_id: UUID, body: ViewCreate
    ) -> SavedView:
        view = self.get(ctx, view_id)
        if not view.changeable_by(ctx):
            raise PermissionDenied("only the view's owner or an admin changes it")
        self._check_sharing(ctx, body)
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "UPDATE saved_views SET name = %s, shared = %s, team = %s,"
                " filters = %s, sort = %s, updated_at = %s"
                " WHERE tenant_id = %s AND view_id = %s"
                f" RETURNING {_COLUMNS}",
                (
                    body.name,
                    body.shared,
                    body.team if body.shared == "team" else None,
                    Jsonb(_stored(body.filters)),
                    body.sort,
                    self._clock(),
                    ctx.tenant_id,
                    view_id,
                ),
            )
            row = cur.fetchone()
        if row is None:  # deleted meanwhile
            raise ViewNotFound(view_id)
        return SavedView.from_row(row)

    def delete(self, ctx: RequestContext, view_id: UUID) -> None:
        view = self.get(ctx, view_id)
        if not view.changeable_by(ctx):
            raise PermissionDenied("only the view's owner or an admin deletes it")
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "DELETE FROM saved_views WHERE tenant_id = %s AND view_id = %s",
                (ctx.tenant_id, view_id),
            )

    def counts(
        self, ctx: RequestContext, filters: list[TicketListFilter]
    ) -> list[int | None]:
        """How many tickets each view's filters match now, in one statement;
        None while the read model is first being built (the views are still
        there to read and change; their tickets answer 503 meanwhile)."""
        _require_staff(ctx)
        where = [ticket_filter(f, ctx) for f in filters]
        try:
            return list(count_tickets(self._read_model, ctx.tenant_id, where))
        except ProjectionNotReady:
            return [None] * len(where)

    def _check_sharing(self, ctx: RequestContext, body: ViewCreate) -> None:
        """Who may share how: anyone on the staff keeps a personal view; a
        team's members (and admins) share with the team; supervisors and
        admins with the whole tenant."""
        if body.shared != "team" and body.team is not None:
            raise InvalidCommand("team", "only a team view names a team")
        if body.shared == "tenant" and not ctx.has_role("supervisor", "admin"):
            raise PermissionDenied("a supervisor or admin shares a view with everyone")
        if body.shared != "team":
            return
        if body.team is None:
            raise InvalidCommand("team", "a team view names its team")
        config = self._tenant_config(ctx.tenant_id)
        if config.team(body.team) is None:
            raise InvalidCommand(
                "team", f"the tenant's settings have no team {body.team!r}"
            )
        if not ctx.has_role("admin") and not _member(ctx, config, body.team):
            raise PermissionDenied(
                f"only members of {body.team!r} share a view with it"
            )


def _stored(filters: TicketListFilter) -> dict[str, Any]:
    """The filters as stored: what was set, in the JSON of the request."""
    return filters.model_dump(mode="json", exclude_defaults=True)


def _require_staff(ctx: RequestContext) -> None:
    if not ctx.is_staff:
        raise PermissionDenied("saved views are for the support side")

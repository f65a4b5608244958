"""A ticket list's filters as a caller may apply them.

``GET /tickets/`` and saved views (``service.views``) both start from a
validated :class:`~schemas.ticket_filters.TicketListFilter` and turn it
into the read model's :class:`~projections.ticket_queries.TicketFilter`
here, so that a view shows exactly what the same query string would.
"""

from __future__ import annotations

from dotmac.ticketing.projections.ticket_queries import TicketFilter
from dotmac.ticketing.schemas.ticket_filters import TicketListFilter
from dotmac.ticketing.service.context import RequestContext

# The words a list filter reads as "nobody" and as "the caller" (Zendesk's
# ``assignee:none`` and ``assignee:me``).
NOBODY, CALLER = "none", "me"


def ticket_filter(filters: TicketListFilter, ctx: RequestContext) -> TicketFilter:
    """The read model's filter of ``filters`` for ``ctx``: ``me`` is the
    caller (in a shared view, whoever looks at it), and a customer sees
    their own tickets only, whatever they ask for."""
    return TicketFilter(
        tenant_id=ctx.tenant_id,
        statuses=tuple(filters.status),
        priorities=tuple(filters.priority),
        categories=tuple(filters.category),
        teams=tuple(_person_or_none(t, ctx, me=False) for t in filters.assigned_team),
        assignees=tuple(_person_or_none(a, ctx) for a in filters.assignee_id),
        customers=(ctx.user_id,) if ctx.is_customer else tuple(filters.customer_id),
        tags=tuple(filters.tags),
        tags_match=filters.tags_match,
        sla_states=tuple(filters.sla_state),
        customer_view=ctx.is_customer,
        sla_breached=filters.sla_breached,
        # Escalations are the support side's business.
        escalation_pending=None if ctx.is_customer else filters.escalation_pending,
        unassigned=filters.unassigned,
        due_before=filters.due_before,
        created_from=filters.created_from,
        created_to=filters.created_to,
        updated_from=filters.updated_from,
        updated_to=filters.updated_to,
        text=filters.q,
        search_internal=ctx.is_staff,
    )


def _person_or_none(value: str, ctx: RequestContext, *, me: bool = True) -> str | None:
    if value == NOBODY:
        return None
    if me and value == CALLER:
        return ctx.user_id
    return value

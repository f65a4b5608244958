"""The analysts' views: their SQL over a build's tables, and their documentation.

These views are a contract: analysts' saved queries depend on them, so a
column is never renamed or removed, only added at the end. The read tables
behind them may change shape with each projection version; the views are
re-created over every new build as it is swapped in.

Each view documents itself (``COMMENT ON VIEW`` and on each column), from
the same text the README's analyst section is written from.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.measures import (
    FIRST_RESPONSE_MINUTES,
    IS_OPEN,
    RESOLUTION_MINUTES,
    RESOLUTION_OUTCOME,
    RESPONSE_OUTCOME,
)

SCHEMA = "analytics"


@dataclass(frozen=True)
class AnalyticsView:
    name: str
    comment: str
    # ``{build}`` is the build schema, ``{analytics}`` this schema (both
    # substituted as quoted identifiers).
    select: str
    columns: tuple[tuple[str, str], ...]  # (column, what it means), in order


TICKET_FACTS = AnalyticsView(
    name="ticket_facts",
    comment=(
        "One row per ticket (all tenants): dimensions, lifecycle timestamps,"
        " wall-clock durations in minutes, reopen and escalation counts, and"
        " SLA due times and state. Free text (title, description, comments)"
        " and customer e-mail are left out on purpose."
    ),
    select=f"""
SELECT tenant_id,
       ticket_id,
       number,
       customer_id,
       status,
       {IS_OPEN} AS is_open,
       priority,
       priority_rank,
       category,
       channel,
       assigned_team,
       assignee_id,
       tags,
       created_at,
       (created_at AT TIME ZONE 'UTC')::date AS created_day,
       first_response_at,
       resolved_at,
       closed_at,
       updated_at,
       last_activity_at,
       round({FIRST_RESPONSE_MINUTES}::numeric, 2) AS first_response_minutes,
       round({RESOLUTION_MINUTES}::numeric, 2) AS resolution_minutes,
       reopen_count,
       escalation_level,
       comment_count,
       public_comment_count,
       attachment_count,
       resolution_code,
       merged_into,
       sla_response_due_at,
       sla_resolution_due_at,
       sla_state
FROM {{build}}.tickets
""",
    columns=(
        ("tenant_id", "Tenant the ticket belongs to."),
        ("ticket_id", "Ticket id (stable; as in the API)."),
        ("number", "Ticket number, sequential per tenant."),
        ("customer_id", "Customer who opened the ticket (or for whom)."),
        (
            "status",
            "Current status: new, open, in_progress, pending, on_hold,"
            " resolved, closed.",
        ),
        ("is_open", "True while the status is active (new to on_hold)."),
        ("priority", "Current priority: low, normal, high, urgent, critical."),
        ("priority_rank", "Priority as a number for sorting, 0 (low) to 4."),
        (
            "category",
            "Current category: technical_support, billing, account,"
            " service_request, complaint, general.",
        ),
        ("channel", "Where the ticket came in: web, email, phone, chat, api."),
        ("assigned_team", "Team the ticket is assigned to now (NULL: none)."),
        ("assignee_id", "Agent the ticket is assigned to now (NULL: none)."),
        ("tags", "Tags (text array)."),
        ("created_at", "When the ticket was opened."),
        ("created_day", "UTC day the ticket was opened."),
        ("first_response_at", "First public reply by an agent (NULL: none yet)."),
        (
            "resolved_at",
            "Latest resolution; NULL while unresolved, including after a reopen.",
        ),
        ("closed_at", "When the ticket was closed (NULL: not closed)."),
        ("updated_at", "Last change to the ticket."),
        ("last_activity_at", "Last event of any kind on the ticket."),
        (
            "first_response_minutes",
            "Wall-clock minutes from creation to the first response.",
        ),
        (
            "resolution_minutes",
            "Wall-clock minutes from creation to the latest resolution.",
        ),
        ("reopen_count", "How many times the ticket was reopened."),
        ("escalation_level", "Escalation level reached (0: never escalated)."),
        ("comment_count", "Comments, public and internal."),
        ("public_comment_count", "Comments visible to the customer."),
        ("attachment_count", "Files attached."),
        ("resolution_code", "Code given at the latest resolution."),
        ("merged_into", "Ticket this one was merged into (NULL: not merged)."),
        ("sla_response_due_at", "First response due (NULL: no SLA target)."),
        ("sla_resolution_due_at", "Resolution due (NULL: no SLA target)."),
        ("sla_state", "SLA state now: ok, warning or breached."),
    ),
)

DAILY_TENANT_METRICS = AnalyticsView(
    name="daily_tenant_metrics",
    comment=(
        "One row per tenant per UTC day with activity: how many tickets"
        " were created, and how many resolve, close, reopen, escalate and"
        " SLA-breach events happened that day. A ticket resolved twice"
        " counts twice in resolved. Days without activity have no row."
    ),
    select="""
SELECT tenant_id, day, created, resolved, closed, reopened, escalated, breached
FROM {build}.daily_metrics
""",
    columns=(
        ("tenant_id", "Tenant."),
        ("day", "UTC day."),
        ("created", "Tickets opened that day."),
        ("resolved", "Resolutions that day (a re-resolution counts again)."),
        ("closed", "Tickets closed that day."),
        ("reopened", "Reopens that day."),
        ("escalated", "Escalations that day."),
        ("breached", "SLA breaches that day."),
    ),
)

SLA_OUTCOMES = AnalyticsView(
    name="sla_outcomes",
    comment=(
        "One row per ticket: its SLA due times and whether each target was"
        " met, breached or is still pending (NULL when the ticket has no"
        " target). Met: done at or before the due time. Breached: done"
        " later, or not done and overdue now. A ticket merged away counts"
        " as done for resolution when it was closed."
    ),
    select=f"""
SELECT tenant_id,
       ticket_id,
       number,
       priority,
       category,
       assigned_team,
       assignee_id,
       created_at,
       sla_response_due_at AS response_due_at,
       first_response_at,
       {RESPONSE_OUTCOME} AS response_outcome,
       sla_resolution_due_at AS resolution_due_at,
       resolved_at,
       closed_at,
       {RESOLUTION_OUTCOME} AS resolution_outcome,
       sla_state
FROM {{build}}.tickets
""",
    columns=(
        ("tenant_id", "Tenant."),
        ("ticket_id", "Ticket id."),
        ("number", "Ticket number."),
        ("priority", "Current priority."),
        ("category", "Current category."),
        ("assigned_team", "Team now."),
        ("assignee_id", "Agent now."),
        ("created_at", "When the ticket was opened."),
        ("response_due_at", "First response due (NULL: no target)."),
        ("first_response_at", "First public agent reply."),
        ("response_outcome", "met, breached, pending; NULL: no target."),
        ("resolution_due_at", "Resolution due (NULL: no target)."),
        ("resolved_at", "Latest resolution."),
        ("closed_at", "When closed."),
        ("resolution_outcome", "met, breached, pending; NULL: no target."),
        ("sla_state", "SLA state now: ok, warning or breached."),
    ),
)

AGENT_PERFORMANCE = AnalyticsView(
    name="agent_performance",
    comment=(
        "One row per tenant and agent, over all the tickets currently"
        " assigned to the agent (all time; filter analytics.ticket_facts"
        " for a period): assigned, open, resolved, median wall-clock"
        " resolution minutes, and reopens."
    ),
    select="""
SELECT tenant_id,
       assignee_id,
       count(*) AS assigned,
       count(*) FILTER (WHERE is_open) AS open,
       count(resolved_at) AS resolved,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_minutes))
             ::numeric, 2) AS median_resolution_minutes,
       sum(reopen_count) AS reopen_count
FROM {analytics}.ticket_facts
WHERE assignee_id IS NOT NULL
GROUP BY tenant_id, assignee_id
""",
    columns=(
        ("tenant_id", "Tenant."),
        ("assignee_id", "Agent."),
        ("assigned", "Tickets assigned to the agent now."),
        ("open", "Of those, tickets still open."),
        ("resolved", "Of those, tickets resolved (including resolved then closed)."),
        (
            "median_resolution_minutes",
            "Median wall-clock minutes to resolution of the resolved ones.",
        ),
        ("reopen_count", "Reopens, summed over the agent's tickets."),
    ),
)

# Creation order: a view after the views it reads.
VIEWS: tuple[AnalyticsView, ...] = (
    TICKET_FACTS,
    DAILY_TENANT_METRICS,
    SLA_OUTCOMES,
    AGENT_PERFORMANCE,
)

"""The analysts' views: their SQL over a build's tables, and their documentation.

These views are a contract: analysts' saved queries depend on them, so a
column is never renamed or removed, only added at the end. The read tables
behind them may change shape with each projection version; the views are
re-created over every new build as it is swapped in.

Each view documents itself (``COMMENT ON VIEW`` and on each column), from
the same text as docs/reference/analytics-views.md (``ticketing docs``
writes it), and declares its columns' types, which the integration tests
hold the database to.
"""

from __future__ import annotations

from dataclasses import dataclass

from dotmac.ticketing.projections.measures import (
    FIRST_RESPONSE_BUSINESS_MINUTES,
    FIRST_RESPONSE_MINUTES,
    IS_OPEN,
    IS_SATISFIED,
    NEXT_REPLY_OUTCOME,
    RESOLUTION_BUSINESS_MINUTES,
    RESOLUTION_MINUTES,
    RESOLUTION_OUTCOME,
    RESPONSE_OUTCOME,
)

SCHEMA = "analytics"

SLA_STATE_DOC = (
    "SLA state now, from the SLA events: while a clock runs, the worst of"
    " breached, warning, running, paused; with every clock stopped, the worst"
    " of breached, met, stopped; none without SLA clocks."
)
TARGET_STATE_DOC = (
    "running, paused, warning, breached (recorded by the timers, or stopped"
    " late), met, stopped (ended without its goal); NULL: no clock."
)


def _minutes(expression: str) -> str:
    return f"round(({expression})::numeric, 2)"


@dataclass(frozen=True)
class AnalyticsView:
    name: str
    comment: str
    # ``{build}`` is the build schema, ``{analytics}`` this schema (both
    # substituted as quoted identifiers).
    select: str
    # (column, its SQL type, what it means), in order.
    columns: tuple[tuple[str, str, str], ...]


TICKET_FACTS = AnalyticsView(
    name="ticket_facts",
    comment=(
        "One row per ticket (all tenants): dimensions, lifecycle timestamps,"
        " wall-clock durations in minutes, reopen and escalation counts, SLA"
        " due times, states and business-minute durations, and an escalation"
        " awaiting approval. Free text (title, description, comments) and"
        " customer e-mail are left out on purpose."
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
       sla_state,
       sla_policy,
       sla_settings_version,
       sla_next_due_at,
       sla_breached,
       sla_response_state,
       sla_response_warning_at,
       sla_response_target_minutes,
       sla_response_breached_at,
       {_minutes(FIRST_RESPONSE_BUSINESS_MINUTES)} AS first_response_business_minutes,
       sla_resolution_state,
       sla_resolution_warning_at,
       sla_resolution_target_minutes,
       sla_resolution_breached_at,
       {_minutes("sla_resolution_paused_minutes")} AS sla_resolution_paused_minutes,
       {_minutes(RESOLUTION_BUSINESS_MINUTES)} AS resolution_business_minutes,
       sla_next_reply_due_at,
       sla_next_reply_state,
       escalation_pending_level,
       escalation_pending_team
FROM {{build}}.tickets
""",
    columns=(
        ("tenant_id", "text", "Tenant the ticket belongs to."),
        ("ticket_id", "uuid", "Ticket id (stable; as in the API)."),
        ("number", "bigint", "Ticket number, sequential per tenant."),
        ("customer_id", "text", "Customer who opened the ticket (or for whom)."),
        (
            "status",
            "text",
            "Current status: new, open, in_progress, pending, on_hold,"
            " resolved, closed.",
        ),
        ("is_open", "boolean", "True while the status is active (new to on_hold)."),
        ("priority", "text", "Current priority: low, normal, high, urgent, critical."),
        (
            "priority_rank",
            "smallint",
            "Priority as a number for sorting, 0 (low) to 4.",
        ),
        (
            "category",
            "text",
            "Current category: technical_support, billing, account,"
            " service_request, complaint, general.",
        ),
        ("channel", "text", "Where the ticket came in: web, email, phone, chat, api."),
        ("assigned_team", "text", "Team the ticket is assigned to now (NULL: none)."),
        ("assignee_id", "text", "Agent the ticket is assigned to now (NULL: none)."),
        ("tags", "text[]", "Tags (text array)."),
        ("created_at", "timestamptz", "When the ticket was opened."),
        ("created_day", "date", "UTC day the ticket was opened."),
        (
            "first_response_at",
            "timestamptz",
            "First public reply by an agent (NULL: none yet).",
        ),
        (
            "resolved_at",
            "timestamptz",
            "Latest resolution; NULL while unresolved, including after a reopen.",
        ),
        ("closed_at", "timestamptz", "When the ticket was closed (NULL: not closed)."),
        ("updated_at", "timestamptz", "Last change to the ticket."),
        ("last_activity_at", "timestamptz", "Last event of any kind on the ticket."),
        (
            "first_response_minutes",
            "numeric",
            "Wall-clock minutes from creation to the first response.",
        ),
        (
            "resolution_minutes",
            "numeric",
            "Wall-clock minutes from creation to the latest resolution.",
        ),
        ("reopen_count", "integer", "How many times the ticket was reopened."),
        (
            "escalation_level",
            "integer",
            "Escalation level reached (0: never escalated).",
        ),
        ("comment_count", "integer", "Comments, public and internal."),
        ("public_comment_count", "integer", "Comments visible to the customer."),
        ("attachment_count", "integer", "Files attached."),
        ("resolution_code", "text", "Code given at the latest resolution."),
        ("merged_into", "uuid", "Ticket this one was merged into (NULL: not merged)."),
        (
            "sla_response_due_at",
            "timestamptz",
            "First response due (NULL: no SLA target, or its clock is paused).",
        ),
        (
            "sla_resolution_due_at",
            "timestamptz",
            "Resolution due (NULL: no SLA target, or its clock is paused).",
        ),
        ("sla_state", "text", SLA_STATE_DOC),
        ("sla_policy", "text", "SLA policy the ticket is measured against."),
        (
            "sla_settings_version",
            "integer",
            "Tenant settings version the policy came from.",
        ),
        ("sla_next_due_at", "timestamptz", "Earliest due time of a running SLA clock."),
        ("sla_breached", "boolean", "True when a current SLA clock was breached."),
        ("sla_response_state", "text", f"First-response clock: {TARGET_STATE_DOC}"),
        (
            "sla_response_warning_at",
            "timestamptz",
            "When the first-response warning is due.",
        ),
        (
            "sla_response_target_minutes",
            "double precision",
            "First-response target, business minutes.",
        ),
        (
            "sla_response_breached_at",
            "timestamptz",
            "When the first-response breach was recorded.",
        ),
        (
            "first_response_business_minutes",
            "numeric",
            "Business minutes from creation to the first response (pauses left"
            " out); NULL when its clock ended without one.",
        ),
        (
            "sla_resolution_state",
            "text",
            f"Resolution clock (restarted at each reopen): {TARGET_STATE_DOC}",
        ),
        (
            "sla_resolution_warning_at",
            "timestamptz",
            "When the resolution warning is due.",
        ),
        (
            "sla_resolution_target_minutes",
            "double precision",
            "Resolution target, business minutes.",
        ),
        (
            "sla_resolution_breached_at",
            "timestamptz",
            "When the resolution breach was recorded.",
        ),
        (
            "sla_resolution_paused_minutes",
            "numeric",
            "Business minutes the resolution clock spent paused (pending).",
        ),
        (
            "resolution_business_minutes",
            "numeric",
            "Business minutes of the resolution clock (from creation, or the"
            " last reopen) to the latest resolution, pauses left out.",
        ),
        (
            "sla_next_reply_due_at",
            "timestamptz",
            "Next agent reply due (NULL: none owed).",
        ),
        ("sla_next_reply_state", "text", f"Next-reply clock: {TARGET_STATE_DOC}"),
        (
            "escalation_pending_level",
            "integer",
            "Level of an escalation awaiting approval.",
        ),
        ("escalation_pending_team", "text", "Team of an escalation awaiting approval."),
    ),
)

DAILY_TENANT_METRICS = AnalyticsView(
    name="daily_tenant_metrics",
    comment=(
        "One row per tenant per UTC day with activity: how many tickets"
        " were created, and how many resolve, close, reopen, escalate,"
        " SLA-breach and SLA-warning events happened that day, and the SLA"
        " clocks that stopped that day by target and outcome. A ticket"
        " resolved twice counts twice in resolved. Days without activity"
        " have no row."
    ),
    select="""
SELECT tenant_id, day, created, resolved, closed, reopened, escalated, breached,
       warnings, response_met, response_breached, resolution_met,
       resolution_breached, next_reply_met, next_reply_breached
FROM {build}.daily_metrics
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("day", "date", "UTC day."),
        ("created", "integer", "Tickets opened that day."),
        ("resolved", "integer", "Resolutions that day (a re-resolution counts again)."),
        ("closed", "integer", "Tickets closed that day."),
        ("reopened", "integer", "Reopens that day."),
        ("escalated", "integer", "Escalations that day."),
        ("breached", "integer", "SLA breaches the timers recorded that day."),
        ("warnings", "integer", "SLA warnings the timers recorded that day."),
        ("response_met", "integer", "First-response clocks stopped that day, met."),
        (
            "response_breached",
            "integer",
            "First-response clocks stopped that day, breached.",
        ),
        ("resolution_met", "integer", "Resolution clocks stopped that day, met."),
        (
            "resolution_breached",
            "integer",
            "Resolution clocks stopped that day, breached.",
        ),
        ("next_reply_met", "integer", "Next-reply clocks stopped that day, met."),
        (
            "next_reply_breached",
            "integer",
            "Next-reply clocks stopped that day, breached.",
        ),
    ),
)

SLA_OUTCOMES = AnalyticsView(
    name="sla_outcomes",
    comment=(
        "One row per ticket: its SLA due times and each target's outcome,"
        " from the SLA events: met (done by the due time), breached (done"
        " late, or the timers recorded the breach), stopped (ended without"
        " its goal, as a ticket resolved without a public reply, or merged"
        " away), pending (running); NULL when the ticket has no such clock."
        " The resolution and next-reply columns are of the current clock"
        " (a reopen restarts the resolution clock; analytics.sla_clocks"
        " has every run)."
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
       sla_state,
       sla_next_reply_due_at AS next_reply_due_at,
       {NEXT_REPLY_OUTCOME} AS next_reply_outcome,
       sla_policy AS policy,
       sla_settings_version AS settings_version,
       {_minutes(FIRST_RESPONSE_BUSINESS_MINUTES)} AS response_business_minutes,
       {_minutes(RESOLUTION_BUSINESS_MINUTES)} AS resolution_business_minutes,
       sla_response_breached_at AS response_breached_at,
       sla_resolution_breached_at AS resolution_breached_at
FROM {{build}}.tickets
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("number", "bigint", "Ticket number."),
        ("priority", "text", "Current priority."),
        ("category", "text", "Current category."),
        ("assigned_team", "text", "Team now."),
        ("assignee_id", "text", "Agent now."),
        ("created_at", "timestamptz", "When the ticket was opened."),
        (
            "response_due_at",
            "timestamptz",
            "First response due (NULL: no target, or paused).",
        ),
        ("first_response_at", "timestamptz", "First public agent reply."),
        (
            "response_outcome",
            "text",
            "met, breached, stopped, pending; NULL: no target.",
        ),
        (
            "resolution_due_at",
            "timestamptz",
            "Resolution due (NULL: no target, or paused).",
        ),
        ("resolved_at", "timestamptz", "Latest resolution."),
        ("closed_at", "timestamptz", "When closed."),
        (
            "resolution_outcome",
            "text",
            "met, breached, stopped, pending; NULL: no target.",
        ),
        ("sla_state", "text", SLA_STATE_DOC),
        (
            "next_reply_due_at",
            "timestamptz",
            "Next agent reply due (NULL: none owed, or paused).",
        ),
        (
            "next_reply_outcome",
            "text",
            "Of the latest next-reply clock: met, breached, stopped, pending;"
            " NULL: no customer reply awaited one yet.",
        ),
        ("policy", "text", "SLA policy the ticket is measured against."),
        (
            "settings_version",
            "integer",
            "Tenant settings version the policy came from.",
        ),
        (
            "response_business_minutes",
            "numeric",
            "Business minutes to the first response; NULL: none (yet).",
        ),
        (
            "resolution_business_minutes",
            "numeric",
            "Business minutes of the current resolution clock to the"
            " resolution; NULL: not resolved (since the last reopen).",
        ),
        (
            "response_breached_at",
            "timestamptz",
            "When the timers recorded the response breach.",
        ),
        (
            "resolution_breached_at",
            "timestamptz",
            "When the timers recorded the resolution breach.",
        ),
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
        ("tenant_id", "text", "Tenant."),
        ("assignee_id", "text", "Agent."),
        ("assigned", "bigint", "Tickets assigned to the agent now."),
        ("open", "bigint", "Of those, tickets still open."),
        (
            "resolved",
            "bigint",
            "Of those, tickets resolved (including resolved then closed).",
        ),
        (
            "median_resolution_minutes",
            "numeric",
            "Median wall-clock minutes to resolution of the resolved ones.",
        ),
        ("reopen_count", "bigint", "Reopens, summed over the agent's tickets."),
    ),
)

SLA_CLOCKS = AnalyticsView(
    name="sla_clocks",
    comment=(
        "One row per SLA clock run: a ticket's first-response clock, each"
        " resolution clock (a reopen starts a new one) and each next-reply"
        " clock (every public customer reply starts one). Due and warning"
        " times, business minutes paused and used, the warning and breach"
        " the timers recorded, and the outcome once stopped. Business"
        " minutes count on the tenant's calendar, pauses left out."
    ),
    select=f"""
SELECT tenant_id,
       ticket_id,
       target,
       started_version,
       policy,
       settings_version,
       priority,
       started_at,
       target_minutes,
       due_at,
       warning_at,
       paused_at,
       {_minutes("paused_minutes")} AS paused_minutes,
       warned_at,
       breached_at,
       goal_at,
       stopped_at,
       outcome,
       {_minutes("business_minutes")} AS business_minutes,
       state
FROM {{build}}.sla_clocks
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("target", "text", "first_response, resolution or next_reply."),
        (
            "started_version",
            "integer",
            "Ticket version of the SLAStarted event (run id).",
        ),
        ("policy", "text", "SLA policy the clock is measured against."),
        (
            "settings_version",
            "integer",
            "Tenant settings version the policy came from.",
        ),
        ("priority", "text", "Ticket priority the target was taken for (latest)."),
        ("started_at", "timestamptz", "When the clock started."),
        ("target_minutes", "double precision", "Target in business minutes."),
        ("due_at", "timestamptz", "Due time (NULL while paused)."),
        ("warning_at", "timestamptz", "Warning point (NULL while paused)."),
        ("paused_at", "timestamptz", "Start of the current pause (NULL: not paused)."),
        (
            "paused_minutes",
            "numeric",
            "Business minutes paused, up to the last resume.",
        ),
        ("warned_at", "timestamptz", "When the timers recorded the warning."),
        ("breached_at", "timestamptz", "When the timers recorded the breach."),
        (
            "goal_at",
            "timestamptz",
            "When the goal was reached: the agent reply, the resolution"
            " (NULL: the clock stopped without it, or runs).",
        ),
        (
            "stopped_at",
            "timestamptz",
            "When the clock stopped (NULL: running or paused).",
        ),
        (
            "outcome",
            "text",
            "met, breached or stopped (without its goal); NULL: running.",
        ),
        (
            "business_minutes",
            "numeric",
            "Business minutes the clock ran, once stopped.",
        ),
        ("state", "text", TARGET_STATE_DOC),
    ),
)

SLA_ALERTS = AnalyticsView(
    name="sla_alerts",
    comment=(
        "One row per SLA warning and breach the timers recorded, at the"
        " time they recorded it."
    ),
    select="""
SELECT tenant_id, ticket_id, version, target, kind, at, due_at,
       round(business_minutes::numeric, 2) AS business_minutes
FROM {build}.sla_alerts
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("version", "integer", "Ticket version of the event."),
        ("target", "text", "first_response, resolution or next_reply."),
        ("kind", "text", "warning or breach."),
        ("at", "timestamptz", "When it was recorded."),
        ("due_at", "timestamptz", "The due time it was about."),
        (
            "business_minutes",
            "numeric",
            "warning: business minutes left; breach: business minutes used.",
        ),
    ),
)

ESCALATIONS = AnalyticsView(
    name="escalations",
    comment=(
        "One row per escalation: the level reached, the team escalated to,"
        " why, and the rule that made it (NULL: a person escalated)."
    ),
    select="""
SELECT tenant_id, ticket_id, level, team, reason, rule, escalated_at
FROM {build}.escalations
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("level", "integer", "Escalation level reached."),
        ("team", "text", "Team escalated to."),
        ("reason", "text", "Why, as recorded."),
        ("rule", "text", "Escalation rule that made it; NULL: escalated by a person."),
        ("escalated_at", "timestamptz", "When."),
    ),
)

ESCALATION_REQUESTS = AnalyticsView(
    name="escalation_requests",
    comment=(
        "One row per escalation a rule asked a supervisor to approve, and"
        " the decision: pending, approved or rejected."
    ),
    select="""
SELECT tenant_id, ticket_id, level, team, rule, reason, requested_at, state,
       decided_at, decided_by, comment
FROM {build}.escalation_requests
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("level", "integer", "Level asked for."),
        ("team", "text", "Team it would go to."),
        ("rule", "text", "Escalation rule that asked."),
        ("reason", "text", "Why, as recorded."),
        ("requested_at", "timestamptz", "When it was asked for."),
        ("state", "text", "pending, approved or rejected."),
        ("decided_at", "timestamptz", "When a supervisor decided (NULL: pending)."),
        ("decided_by", "text", "Who decided."),
        ("comment", "text", "The supervisor's comment."),
    ),
)

SATISFACTION = AnalyticsView(
    name="satisfaction",
    comment=(
        "One row per ticket its customer rated: the latest rating (1-5),"
        " when it was given, whether it counts as satisfied (4 or 5, the"
        " CSAT definition), and the ticket's dimensions to group by. The"
        " customer's comment is left out on purpose."
    ),
    select=f"""
SELECT tenant_id,
       ticket_id,
       customer_id,
       category,
       priority,
       assigned_team,
       assignee_id,
       satisfaction_rating AS rating,
       {IS_SATISFIED} AS satisfied,
       satisfaction_rated_at AS rated_at,
       (satisfaction_rated_at AT TIME ZONE 'UTC')::date AS rated_day
FROM {{build}}.tickets
WHERE satisfaction_rated_at IS NOT NULL
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("customer_id", "text", "The customer who rated."),
        ("category", "text", "Ticket category now."),
        ("priority", "text", "Ticket priority now."),
        ("assigned_team", "text", "Team now (the one the rating is reported for)."),
        ("assignee_id", "text", "Assignee now (the one the rating is reported for)."),
        ("rating", "smallint", "The latest rating, 1 (worst) to 5 (best)."),
        ("satisfied", "boolean", "Rated 4 or 5: counts towards CSAT."),
        ("rated_at", "timestamptz", "When the latest rating was given."),
        ("rated_day", "date", "UTC day of rated_at."),
    ),
)

MAIL_BOUNCES = AnalyticsView(
    name="mail_bounces",
    comment=(
        "One row per address whose e-mail bounced permanently and has not"
        " worked since: the notifier sends it nothing until mail from it"
        " arrives or an admin clears it, and then the row is gone. Read"
        " from the inbound-mail tables, not a build: current, whatever the"
        " projections. The address is here, unlike in the other views:"
        " without it a bounce cannot be followed up."
    ),
    select="""
SELECT tenant_id,
       address,
       status,
       diagnostic,
       ticket_id,
       bounces AS bounce_count,
       first_at AS first_bounce_at,
       last_at AS last_bounce_at
FROM public.mail_bounces
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("address", "text", "The address, lower-cased, as the report named it."),
        (
            "status",
            "text",
            "Status code of the latest report (RFC 3463), such as 5.1.1.",
        ),
        (
            "diagnostic",
            "text",
            "The receiving server's words in the latest report (one line).",
        ),
        (
            "ticket_id",
            "uuid",
            "Ticket whose mail bounced (the latest known; NULL: none named).",
        ),
        ("bounce_count", "integer", "Reports received, the first included."),
        ("first_bounce_at", "timestamptz", "When the first report arrived."),
        ("last_bounce_at", "timestamptz", "When the latest report arrived."),
    ),
)

TIME_ENTRIES = AnalyticsView(
    name="time_entries",
    comment=(
        "One row per time entry agents logged on a ticket and did not take"
        " back: whose time, how many minutes, billable or not, the type of"
        " work, and the ticket's customer, category and team now. The"
        " agent's note is left out on purpose."
    ),
    select="""
SELECT e.tenant_id,
       e.ticket_id,
       e.entry_id,
       e.agent_id,
       e.minutes,
       e.billable,
       e.work_type,
       e.logged_by,
       e.logged_at,
       (e.logged_at AT TIME ZONE 'UTC')::date AS logged_day,
       t.customer_id,
       t.category,
       t.assigned_team
FROM {build}.time_entries AS e
JOIN {build}.tickets AS t ON t.ticket_id = e.ticket_id
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("ticket_id", "uuid", "Ticket id."),
        ("entry_id", "text", "Time entry id."),
        ("agent_id", "text", "Whose time it is."),
        ("minutes", "integer", "Minutes spent (1 to 1440)."),
        ("billable", "boolean", "Billed to the customer."),
        (
            "work_type",
            "text",
            "support, investigation, development, onsite, travel or other.",
        ),
        ("logged_by", "text", "Who logged it (a supervisor may log for an agent)."),
        ("logged_at", "timestamptz", "When it was logged."),
        ("logged_day", "date", "UTC day of logged_at."),
        ("customer_id", "text", "The ticket's customer."),
        ("category", "text", "Ticket category now."),
        ("assigned_team", "text", "Team now."),
    ),
)


def _time_sums(name: str, key: str, who: str) -> AnalyticsView:
    """Sums of ``analytics.time_entries`` per tenant and ``key``."""
    return AnalyticsView(
        name=name,
        comment=(
            f"One row per tenant and {who} with time logged (all time; filter"
            " analytics.time_entries for a period): entries, tickets, minutes"
            " in all and billable."
        ),
        select=f"""
SELECT tenant_id,
       {key},
       count(*) AS entries,
       count(DISTINCT ticket_id) AS tickets,
       sum(minutes) AS minutes,
       coalesce(sum(minutes) FILTER (WHERE billable), 0) AS billable_minutes
FROM {{analytics}}.time_entries
GROUP BY tenant_id, {key}
""",
        columns=(
            ("tenant_id", "text", "Tenant."),
            (key, "text", f"The {who}."),
            ("entries", "bigint", "Time entries."),
            ("tickets", "bigint", "Tickets they are on."),
            ("minutes", "bigint", "Minutes logged."),
            ("billable_minutes", "bigint", "Of those, billable minutes."),
        ),
    )


TIME_BY_AGENT = _time_sums("time_by_agent", "agent_id", "agent")
TIME_BY_CUSTOMER = _time_sums("time_by_customer", "customer_id", "customer")

MACRO_USAGE = AnalyticsView(
    name="macro_usage",
    comment=(
        "One row per application of a macro that changed a ticket: by a"
        " person (POST /tickets/{id}/macros/{macro}, bulk actions) or by a"
        " trigger's action. Read from macro_applications, not a build:"
        " current, whatever the projections. Count rows per macro_id for"
        " a macro's usage; name is the macro's name now (NULL: deleted since)."
    ),
    select="""
SELECT a.tenant_id,
       a.macro_id,
       m.name AS macro_name,
       a.ticket_id,
       a.applied_by,
       a.applied_at,
       (a.applied_at AT TIME ZONE 'UTC')::date AS applied_day,
       a.ticket_version,
       a.events AS event_count
FROM public.macro_applications a
LEFT JOIN public.macros m ON m.id = a.macro_id
""",
    columns=(
        ("tenant_id", "text", "Tenant."),
        ("macro_id", "uuid", "The macro applied."),
        ("macro_name", "text", "Its name now; NULL once the macro is deleted."),
        ("ticket_id", "uuid", "The ticket it was applied to."),
        (
            "applied_by",
            "text",
            "Who applied it: a person's id, or the trigger's automation name.",
        ),
        ("applied_at", "timestamptz", "When (the service's clock)."),
        ("applied_day", "date", "UTC day of applied_at."),
        ("ticket_version", "integer", "The ticket's version after the macro."),
        ("event_count", "integer", "Events the application recorded."),
    ),
)

# Creation order: a view after the views it reads.
VIEWS: tuple[AnalyticsView, ...] = (
    TICKET_FACTS,
    DAILY_TENANT_METRICS,
    SLA_OUTCOMES,
    AGENT_PERFORMANCE,
    SLA_CLOCKS,
    SLA_ALERTS,
    ESCALATIONS,
    ESCALATION_REQUESTS,
    SATISFACTION,
    MAIL_BOUNCES,
    TIME_ENTRIES,
    TIME_BY_AGENT,
    TIME_BY_CUSTOMER,
    MACRO_USAGE,
)

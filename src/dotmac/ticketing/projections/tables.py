"""The read tables of the tickets projection, created in a schema per build.

A build's schema is named ``readmodel_tickets_v<version>_<build>``, so a
rebuild fills fresh tables while queries keep reading the active ones.

SLA clocks live twice: the ``tickets`` row carries each target's current
clock (columns ``sla_response_*``, ``sla_resolution_*``,
``sla_next_reply_*``) for lists and filters, and ``sla_clocks`` keeps one
row per clock run (a reopen restarts the resolution clock, every customer
reply starts a next-reply clock) for compliance over time. The states are
generated columns, derived from the facts the events recorded, so the
projector never has to read a row to decide one.
"""

from collections.abc import Mapping

from psycopg import sql

# Bump when the tables or the projector change: the worker then rebuilds
# into fresh tables from position zero and swaps them in once caught up.
TICKETS_PROJECTION_VERSION = 4

#: The column prefix on ``tickets`` of each SLA target's current clock.
TARGET_PREFIX: Mapping[str, str] = {
    "first_response": "sla_response",
    "resolution": "sla_resolution",
    "next_reply": "sla_next_reply",
}

#: The SLA states, running ones first (see :func:`clock_state`).
SLA_STATES: tuple[str, ...] = (
    "running",
    "paused",
    "warning",
    "breached",
    "met",
    "stopped",
    "none",
)

# What the events record about one clock run; ``tickets`` has them once per
# target (prefixed), ``sla_clocks`` once per row.
CLOCK_COLUMNS = """
    {p}started_at        timestamptz,
    {p}target_minutes    double precision,
    {p}due_at            timestamptz,
    {p}warning_at        timestamptz,
    {p}paused_at         timestamptz,
    {p}paused_minutes    double precision,
    {p}warned_at         timestamptz,
    {p}breached_at       timestamptz,
    {p}goal_at           timestamptz,
    {p}stopped_at        timestamptz,
    {p}outcome           text,
    {p}business_minutes  double precision,
"""


def clock_state(p: str = "") -> str:
    """The state of a clock from its facts (``p``: column prefix).

    The same precedence as ``domain.sla.target_state``, read from the
    events only: a clock turns ``warning`` or ``breached`` when the timers
    record it (``SLAWarning``, ``SLABreached``), not by the database clock.
    NULL when the target never started.
    """
    return f"""(CASE
        WHEN {p}started_at IS NULL THEN NULL
        WHEN {p}stopped_at IS NOT NULL THEN coalesce({p}outcome, 'stopped')
        WHEN {p}breached_at IS NOT NULL THEN 'breached'
        WHEN {p}paused_at IS NOT NULL THEN 'paused'
        WHEN {p}warned_at IS NOT NULL THEN 'warning'
        ELSE 'running'
    END)"""


# Each clock's weight in the ticket's state: running states outrank the
# outcomes of stopped clocks, the worst of each group outranks the rest.
_RANKS = (
    ("breached", 7),
    ("warning", 6),
    ("running", 5),
    ("paused", 4),
    ("breached", 3),
    ("met", 2),
    ("stopped", 1),
)


def _rank(p: str) -> str:
    """A clock's weight (0: never started); see :data:`_RANKS`."""
    return f"""(CASE
        WHEN {p}started_at IS NULL THEN 0
        WHEN {p}stopped_at IS NOT NULL THEN
            CASE {p}outcome WHEN 'breached' THEN 3 WHEN 'met' THEN 2 ELSE 1 END
        WHEN {p}breached_at IS NOT NULL THEN 7
        WHEN {p}paused_at IS NOT NULL THEN 4
        WHEN {p}warned_at IS NOT NULL THEN 6
        ELSE 5
    END)"""


def _overall_state() -> str:
    """One state per ticket: its running clocks first, then the outcomes.

    While a clock runs, the worst running state wins (breached, warning,
    running, paused): what is owed now. With every clock stopped, the worst
    outcome (breached, met, stopped). ``none`` without any clock.

    Written as the greatest of three small numbers: PostgreSQL computes
    every generated column on every update of the row, and this form made
    updates about 1.5 times faster than comparing the clocks' states one by
    one (2,000 rows updated three times, on the 2-core development machine).
    """
    ranks = ", ".join(_rank(f"{p}_") for p in TARGET_PREFIX.values())
    cases = " ".join(f"WHEN {rank} THEN '{state}'" for state, rank in _RANKS)
    return f"(CASE greatest({ranks}) {cases} ELSE 'none' END)"


def _next_due() -> str:
    """The earliest due time of a clock still running (NULL: none due)."""
    dues = [
        f"CASE WHEN {p}_stopped_at IS NULL THEN {p}_due_at END"
        for p in TARGET_PREFIX.values()
    ]
    return f"least({', '.join(dues)})"


def _ever_breached() -> str:
    """A current clock was breached: recorded by a timer, or stopped late."""
    checks = [
        f"{p}_breached_at IS NOT NULL OR {p}_outcome IS NOT DISTINCT FROM 'breached'"
        for p in TARGET_PREFIX.values()
    ]
    return f"({' OR '.join(checks)})"


def _ticket_clock_columns() -> str:
    parts = []
    for prefix in TARGET_PREFIX.values():
        p = f"{prefix}_"
        parts.append(CLOCK_COLUMNS.format(p=p))
        parts.append(f"    {p}state text GENERATED ALWAYS AS {clock_state(p)} STORED,")
    return "\n".join(parts)


def _escape(text: str) -> str:
    # The DDL below is a format string (``{schema}``): literal braces double.
    return text.replace("{", "{{").replace("}", "}}")


TICKETS_DDL = (
    """
CREATE TABLE IF NOT EXISTS {schema}.tickets (
    tenant_id              text        NOT NULL,
    ticket_id              uuid        NOT NULL,
    number                 bigint      NOT NULL,
    title                  text        NOT NULL,
    description            text        NOT NULL,
    status                 text        NOT NULL,
    priority               text        NOT NULL,
    priority_rank          smallint    NOT NULL,
    category               text        NOT NULL,
    channel                text        NOT NULL,
    customer_id            text        NOT NULL,
    customer_email         text,
    tags                   text[]      NOT NULL DEFAULT '{{}}',
    custom_fields          jsonb       NOT NULL DEFAULT '{{}}',
    assigned_team          text,
    assignee_id            text,
    escalation_level       integer     NOT NULL DEFAULT 0,
    -- The escalation a rule asked a supervisor to approve, while it waits.
    escalation_pending_level integer,
    escalation_pending_team  text,
    escalation_requested_at  timestamptz,
    reopen_count           integer     NOT NULL DEFAULT 0,
    comment_count          integer     NOT NULL DEFAULT 0,
    public_comment_count   integer     NOT NULL DEFAULT 0,
    attachment_count       integer     NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    last_activity_at       timestamptz NOT NULL,
    first_response_at      timestamptz,
    resolved_at            timestamptz,
    closed_at              timestamptz,
    resolution_code        text,
    merged_into            uuid,
    -- The customer's latest satisfaction rating (1-5) and when they gave it.
    satisfaction_rating    smallint,
    satisfaction_rated_at  timestamptz,
    -- The SLA policy the clocks are measured against, and its settings version.
    sla_policy             text,
    sla_settings_version   integer,
"""
    + _escape(
        _ticket_clock_columns()
        + f"""
    sla_state text GENERATED ALWAYS AS {_overall_state()} STORED,
    sla_next_due_at timestamptz GENERATED ALWAYS AS ({_next_due()}) STORED,
    sla_breached boolean GENERATED ALWAYS AS {_ever_breached()} STORED,
"""
    )
    + """
    public_comments_text   text        NOT NULL DEFAULT '',
    -- Full-text search: title first, then description, then public replies.
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, description), 'B')
        || setweight(to_tsvector('english'::regconfig, public_comments_text), 'C')
    ) STORED,
    -- Internal notes, searched for staff only (customers never match them).
    internal_notes_text    text        NOT NULL DEFAULT '',
    internal_search tsvector GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, internal_notes_text)
    ) STORED,
    version                integer     NOT NULL,
    position               bigint      NOT NULL,
    PRIMARY KEY (ticket_id)
);
CREATE INDEX IF NOT EXISTS tickets_tenant_created
    ON {schema}.tickets (tenant_id, created_at DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_tenant_updated
    ON {schema}.tickets (tenant_id, updated_at DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_tenant_priority
    ON {schema}.tickets (tenant_id, priority_rank DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_tenant_due
    ON {schema}.tickets (tenant_id, sla_next_due_at, ticket_id);
CREATE INDEX IF NOT EXISTS tickets_tenant_sla_state
    ON {schema}.tickets (tenant_id, sla_state);
CREATE INDEX IF NOT EXISTS tickets_tenant_status
    ON {schema}.tickets (tenant_id, status);
CREATE INDEX IF NOT EXISTS tickets_tenant_customer
    ON {schema}.tickets (tenant_id, customer_id, created_at DESC);
-- A customer known by address (projections.customers): v3 added it.
CREATE INDEX IF NOT EXISTS tickets_tenant_customer_email
    ON {schema}.tickets (tenant_id, lower(customer_email), created_at, number)
    WHERE customer_email IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_tenant_assignee
    ON {schema}.tickets (tenant_id, assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_tenant_team
    ON {schema}.tickets (tenant_id, assigned_team) WHERE assigned_team IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_tenant_rated
    ON {schema}.tickets (tenant_id, satisfaction_rated_at)
    WHERE satisfaction_rated_at IS NOT NULL;
-- Saved views' counts (projections.ticket_queries.count_tickets): every
-- column a list filter reads but the text, so one index-only scan of the
-- tenant's entries counts every view at once; v4 added it.
CREATE INDEX IF NOT EXISTS tickets_tenant_counts
    ON {schema}.tickets (tenant_id) INCLUDE (
        status, priority, category, assigned_team, assignee_id, customer_id,
        sla_state, sla_breached, escalation_pending_level, sla_next_due_at,
        created_at, updated_at, tags
    );
CREATE INDEX IF NOT EXISTS tickets_tags ON {schema}.tickets USING gin (tags);
CREATE INDEX IF NOT EXISTS tickets_search ON {schema}.tickets USING gin (search);
CREATE INDEX IF NOT EXISTS tickets_internal_search
    ON {schema}.tickets USING gin (internal_search);

-- One row per tenant per UTC day, counted as the events arrive.
CREATE TABLE IF NOT EXISTS {schema}.daily_metrics (
    tenant_id  text    NOT NULL,
    day        date    NOT NULL,
    created    integer NOT NULL DEFAULT 0,
    resolved   integer NOT NULL DEFAULT 0,
    closed     integer NOT NULL DEFAULT 0,
    reopened   integer NOT NULL DEFAULT 0,
    escalated  integer NOT NULL DEFAULT 0,
    breached   integer NOT NULL DEFAULT 0,
    warnings   integer NOT NULL DEFAULT 0,
    -- Clocks stopped that day, by target and outcome.
    response_met         integer NOT NULL DEFAULT 0,
    response_breached    integer NOT NULL DEFAULT 0,
    resolution_met       integer NOT NULL DEFAULT 0,
    resolution_breached  integer NOT NULL DEFAULT 0,
    next_reply_met       integer NOT NULL DEFAULT 0,
    next_reply_breached  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

-- One row per escalation, for the dashboard's escalation figures.
CREATE TABLE IF NOT EXISTS {schema}.escalations (
    tenant_id     text        NOT NULL,
    ticket_id     uuid        NOT NULL,
    level         integer     NOT NULL,
    team          text,
    reason        text        NOT NULL,
    rule          text,
    escalated_at  timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, level, escalated_at)
);
CREATE INDEX IF NOT EXISTS escalations_tenant_time
    ON {schema}.escalations (tenant_id, escalated_at);

-- One row per escalation a rule asked a supervisor to approve.
CREATE TABLE IF NOT EXISTS {schema}.escalation_requests (
    tenant_id          text        NOT NULL,
    ticket_id          uuid        NOT NULL,
    requested_version  integer     NOT NULL,
    level              integer     NOT NULL,
    team               text        NOT NULL,
    rule               text        NOT NULL,
    reason             text        NOT NULL,
    requested_at       timestamptz NOT NULL,
    state              text        NOT NULL DEFAULT 'pending',
    decided_at         timestamptz,
    decided_by         text,
    comment            text,
    PRIMARY KEY (ticket_id, requested_version)
);
CREATE INDEX IF NOT EXISTS escalation_requests_tenant_time
    ON {schema}.escalation_requests (tenant_id, requested_at);
CREATE INDEX IF NOT EXISTS escalation_requests_pending
    ON {schema}.escalation_requests (tenant_id) WHERE state = 'pending';

-- One row per SLA clock run: its due time, pauses, warnings and outcome.
CREATE TABLE IF NOT EXISTS {schema}.sla_clocks (
    tenant_id          text    NOT NULL,
    ticket_id          uuid    NOT NULL,
    target             text    NOT NULL,
    started_version    integer NOT NULL,
    policy             text,
    settings_version   integer,
    priority           text,
"""
    + _escape(
        CLOCK_COLUMNS.format(p="")
        + f"    state text GENERATED ALWAYS AS {clock_state()} STORED,"
    )
    + """
    PRIMARY KEY (ticket_id, target, started_version)
);
CREATE INDEX IF NOT EXISTS sla_clocks_tenant_stopped
    ON {schema}.sla_clocks (tenant_id, stopped_at) WHERE stopped_at IS NOT NULL;

-- One row per SLA warning and breach the timers recorded.
CREATE TABLE IF NOT EXISTS {schema}.sla_alerts (
    tenant_id         text        NOT NULL,
    ticket_id         uuid        NOT NULL,
    version           integer     NOT NULL,
    target            text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('warning', 'breach')),
    at                timestamptz NOT NULL,
    due_at            timestamptz NOT NULL,
    business_minutes  double precision NOT NULL,
    PRIMARY KEY (ticket_id, version)
);
CREATE INDEX IF NOT EXISTS sla_alerts_tenant_time
    ON {schema}.sla_alerts (tenant_id, at);

-- One row per time entry still standing (a removed one is deleted); v4
-- added it. The agent's note stays in the events (personal text).
CREATE TABLE IF NOT EXISTS {schema}.time_entries (
    tenant_id   text        NOT NULL,
    ticket_id   uuid        NOT NULL,
    entry_id    text        NOT NULL,
    agent_id    text        NOT NULL,
    minutes     integer     NOT NULL,
    billable    boolean     NOT NULL,
    work_type   text        NOT NULL,
    logged_by   text        NOT NULL,
    logged_at   timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, entry_id)
);
CREATE INDEX IF NOT EXISTS time_entries_tenant_agent
    ON {schema}.time_entries (tenant_id, agent_id, logged_at);
"""
)


def tickets_ddl(schema: str) -> list[sql.Composed]:
    """The statements that create the read tables in ``schema``."""
    identifier = sql.Identifier(schema)
    return [
        sql.SQL(statement).format(schema=identifier)
        for statement in TICKETS_DDL.split(";\n")
        if statement.strip()
    ]

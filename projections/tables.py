"""The read tables of the tickets projection, created in a schema per build.

A build's schema is named ``readmodel_tickets_v<version>_<build>``, so a
rebuild fills fresh tables while queries keep reading the active ones.
"""

from psycopg import sql

# Bump when the tables or the projector change: the worker then rebuilds
# into fresh tables from position zero and swaps them in once caught up.
TICKETS_PROJECTION_VERSION = 1

TICKETS_DDL = """
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
    sla_response_due_at    timestamptz,
    sla_resolution_due_at  timestamptz,
    sla_state              text        NOT NULL DEFAULT 'ok',
    public_comments_text   text        NOT NULL DEFAULT '',
    -- Full-text search: title first, then description, then public replies.
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, description), 'B')
        || setweight(to_tsvector('english'::regconfig, public_comments_text), 'C')
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
    ON {schema}.tickets (tenant_id, sla_resolution_due_at, ticket_id);
CREATE INDEX IF NOT EXISTS tickets_tenant_status
    ON {schema}.tickets (tenant_id, status);
CREATE INDEX IF NOT EXISTS tickets_tenant_customer
    ON {schema}.tickets (tenant_id, customer_id, created_at DESC);
CREATE INDEX IF NOT EXISTS tickets_tenant_assignee
    ON {schema}.tickets (tenant_id, assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_tenant_team
    ON {schema}.tickets (tenant_id, assigned_team) WHERE assigned_team IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_tags ON {schema}.tickets USING gin (tags);
CREATE INDEX IF NOT EXISTS tickets_search ON {schema}.tickets USING gin (search);

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
    PRIMARY KEY (tenant_id, day)
);

-- One row per escalation, for the dashboard's escalation figures.
CREATE TABLE IF NOT EXISTS {schema}.escalations (
    tenant_id     text        NOT NULL,
    ticket_id     uuid        NOT NULL,
    level         integer     NOT NULL,
    team          text,
    reason        text        NOT NULL,
    escalated_at  timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, level, escalated_at)
);
CREATE INDEX IF NOT EXISTS escalations_tenant_time
    ON {schema}.escalations (tenant_id, escalated_at);
"""


def tickets_ddl(schema: str) -> list[sql.Composed]:
    """The statements that create the read tables in ``schema``."""
    identifier = sql.Identifier(schema)
    return [
        sql.SQL(statement).format(schema=identifier)
        for statement in TICKETS_DDL.split(";\n")
        if statement.strip()
    ]

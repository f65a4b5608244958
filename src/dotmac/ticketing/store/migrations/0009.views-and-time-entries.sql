-- depends: 0008.bulk-jobs
-- Saved views (issue 17): a named ticket list, its filters (the query
-- parameters of GET /tickets/, validated by schemas.ticket_filters) and sort,
-- personal (its owner's), a team's or the whole tenant's. State, not events:
-- a view is a preference, not a fact about a ticket. Time entries live in
-- the ticket's events (TimeLogged) and its read tables, so need nothing here.
CREATE TABLE IF NOT EXISTS saved_views (
    tenant_id   text        NOT NULL,
    view_id     uuid        NOT NULL,
    name        text        NOT NULL,
    owner_id    text        NOT NULL,
    shared      text        NOT NULL CHECK (shared IN ('personal', 'team', 'tenant')),
    team        text,
    filters     jsonb       NOT NULL,
    sort        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, view_id),
    CHECK ((shared = 'team') = (team IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS saved_views_tenant_owner
    ON saved_views (tenant_id, owner_id);

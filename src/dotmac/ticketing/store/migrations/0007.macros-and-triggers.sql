-- depends: 0006.retention
-- Macros and triggers (issue 17). A tenant's macros and triggers are rows
-- of their own rather than sections of the settings document: admins edit
-- them one at a time (service/macros.py, service/triggers.py), and the
-- trigger consumer reads only a tenant's triggers. Names need not be
-- unique (the id names a macro, as in the routes).
CREATE TABLE IF NOT EXISTS macros (
    id          uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    actions     jsonb       NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per application of a macro that changed a ticket (by a person,
-- or by a trigger's action): analytics.macro_usage reads it.
CREATE TABLE IF NOT EXISTS macro_applications (
    id             bigserial   PRIMARY KEY,
    tenant_id      text        NOT NULL,
    macro_id       uuid        NOT NULL,
    ticket_id      uuid        NOT NULL,
    applied_by     text        NOT NULL,
    applied_at     timestamptz NOT NULL,
    ticket_version integer     NOT NULL,
    events         integer     NOT NULL
);
CREATE INDEX IF NOT EXISTS macros_tenant ON macros (tenant_id, name);
CREATE INDEX IF NOT EXISTS macro_applications_tenant
    ON macro_applications (tenant_id, macro_id, applied_at);

CREATE TABLE IF NOT EXISTS triggers (
    id          uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    enabled     boolean     NOT NULL DEFAULT true,
    -- {"type": "event", "events": [...]} or {"type": "time", "status": ...,
    -- "hours": ..., "business_hours": ...} (schemas/triggers.py).
    trigger_when jsonb      NOT NULL,
    conditions  jsonb       NOT NULL DEFAULT '{}',
    actions     jsonb       NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS triggers_tenant ON triggers (tenant_id, created_at);

-- What each trigger did: fired (its actions saved, `events` of them), or
-- cut (the chain of triggers reached the depth limit: nothing done). One
-- row per trigger and causing event, so a redelivered event runs it once.
CREATE TABLE IF NOT EXISTS trigger_runs (
    id          bigserial   PRIMARY KEY,
    tenant_id   text        NOT NULL,
    trigger_id  uuid        NOT NULL,
    ticket_id   uuid        NOT NULL,
    cause       text        NOT NULL,  -- the causing event id, or the timer
    depth       integer     NOT NULL,
    outcome     text        NOT NULL,  -- fired, cut, refused
    events      integer     NOT NULL DEFAULT 0,
    detail      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    UNIQUE (trigger_id, cause)
);
CREATE INDEX IF NOT EXISTS trigger_runs_trigger ON trigger_runs (trigger_id, id);

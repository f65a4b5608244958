-- depends: 0009.views-and-time-entries
-- What-if replays (issue 17): one row per simulation a tenant's admin or
-- supervisor asked for (service/simulations.py). The API process that took
-- it runs it in the background and writes its progress here; `lease_until`
-- is renewed with every batch, so a simulation whose process died is
-- marked failed once its lease has expired. Simulations write nothing to
-- tickets: a failed one is simply asked for again.
CREATE TABLE IF NOT EXISTS simulations (
    simulation_id  uuid        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    requested_by   text        NOT NULL,
    state          text        NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    period_start   timestamptz NOT NULL,
    period_end     timestamptz NOT NULL,
    settings       jsonb       NOT NULL,
    tickets_total  integer,
    tickets_done   integer     NOT NULL DEFAULT 0,
    events_read    bigint      NOT NULL DEFAULT 0,
    result         jsonb,
    error          text,
    lease_until    timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX IF NOT EXISTS simulations_by_tenant
    ON simulations (tenant_id, created_at DESC);

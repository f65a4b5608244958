-- depends: 0007.macros-and-triggers
-- Bulk actions (issue 17, point 3): a job applies one action to up to
-- 10,000 tickets (service/bulk.py). The ticket ids are resolved when the job
-- starts and kept here, so a resumed job applies the same set. An item's
-- "done" is written in the transaction of the ticket's events
-- (store/batch_recorder.py), so after a crash an item is either applied and
-- marked, or neither: a resumed job never applies it twice.
CREATE TABLE IF NOT EXISTS bulk_jobs (
    job_id          uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    -- Who asked: the job acts as them (their roles when they asked).
    created_by      text        NOT NULL,
    roles           text[]      NOT NULL,
    idempotency_key text,
    -- The action and the selection as asked (schemas/bulk.py).
    action          jsonb       NOT NULL,
    selection       jsonb       NOT NULL,
    state           text        NOT NULL,
    total           integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    -- The runner working the job and until when its claim holds.
    lease_owner     text,
    lease_until     timestamptz
);
-- The runners' claim: unfinished jobs, oldest first.
CREATE INDEX IF NOT EXISTS bulk_jobs_unfinished
    ON bulk_jobs (created_at) WHERE state = 'running';

CREATE TABLE IF NOT EXISTS bulk_job_items (
    job_id      uuid        NOT NULL REFERENCES bulk_jobs (job_id) ON DELETE CASCADE,
    position    integer     NOT NULL,
    ticket_id   uuid        NOT NULL,
    -- NULL: not yet applied; done | conflict_retried | refused.
    outcome     text,
    changed     boolean,
    conflicts   integer     NOT NULL DEFAULT 0,
    -- A refusal's problem type (not-found, invalid-transition, ...) and why.
    problem     text,
    reason      text,
    version     integer,
    finished_at timestamptz,
    PRIMARY KEY (job_id, position)
);
CREATE INDEX IF NOT EXISTS bulk_job_items_pending
    ON bulk_job_items (job_id, position) WHERE outcome IS NULL;

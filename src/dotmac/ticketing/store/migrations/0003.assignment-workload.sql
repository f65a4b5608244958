-- depends: 0002.mail-digests-and-customer-names
-- Assignment without waiting on the read model (issue 13, point 4): one row
-- per ticket saying whose load it is (domain/workload.py), written in the
-- same transaction as the ticket's events (store/batch_recorder.py), so the
-- loads and queues an assignment reads are exact the moment a save commits.
-- The row is the ticket's state at `version`; a write only ever replaces a
-- lower version, so the save path and the tickets projection (which repairs
-- rows of tickets saved by an older release during a rolling deploy) can
-- both write it in any order.
--
-- assignment_turns.last_position is no longer read (the previous release
-- waited for the read model to reach it); it stays for that release's
-- processes while a deploy rolls.

CREATE TABLE IF NOT EXISTS ticket_workload (
    ticket_id   uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    version     integer     NOT NULL,
    assignee_id text,
    team        text,
    active      boolean     NOT NULL,
    number      bigint      NOT NULL,
    created_at  timestamptz NOT NULL
);
-- An agent's load: their active tickets.
CREATE INDEX IF NOT EXISTS ticket_workload_agent_load
    ON ticket_workload (tenant_id, assignee_id) WHERE active;
-- A team's queue: its active tickets nobody holds, oldest first.
CREATE INDEX IF NOT EXISTS ticket_workload_team_queue
    ON ticket_workload (tenant_id, team, created_at, number)
    WHERE active AND assignee_id IS NULL;

-- Seed from the active tickets build, if there is one. Tickets whose events
-- the projection has not applied yet get their rows when it does.
DO $$
DECLARE
    build text;
BEGIN
    SELECT schema_name INTO build FROM projection_builds
     WHERE projection = 'tickets' AND state = 'active';
    IF build IS NOT NULL THEN
        EXECUTE format(
            'INSERT INTO ticket_workload'
            ' (ticket_id, tenant_id, version, assignee_id, team, active,'
            '  number, created_at)'
            ' SELECT ticket_id, tenant_id, version, assignee_id, assigned_team,'
            '  status IN (''new'', ''open'', ''in_progress'', ''pending'','
            '  ''on_hold''), number, created_at'
            ' FROM %I.tickets ON CONFLICT (ticket_id) DO NOTHING',
            build
        );
    END IF;
END $$;

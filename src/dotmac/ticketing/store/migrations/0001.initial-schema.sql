-- The service's whole static schema as the code before numbered migrations
-- created it at every process start (issue 12): the eventsourcing library's
-- tables for our settings, then each part's own tables, with the columns
-- later added by ALTER TABLE folded in at the place they took.
--
-- Every statement is idempotent (IF NOT EXISTS, a guarded CREATE TYPE, CREATE
-- OR REPLACE, ON CONFLICT DO NOTHING): on a database created by that older
-- code it changes nothing, so `ticketing db migrate` adopts such a database
-- by applying this file and recording it. The ADD COLUMN IF NOT EXISTS
-- statements after a table upgrade one from before those columns, as the
-- older code did at start.
--
-- Not here: the read tables of each projection build (a schema
-- rm_<projection>_v<version>_<random> per build, created when a rebuild
-- starts and dropped when it is retired: projections/registry.py,
-- projections/tables.py) and the analytics views re-created at every swap
-- (projections/analytics.py). They belong to the rebuild mechanism.
--
-- Applied once per database; never edit it: a change is a new numbered file.

-- == The event store (the eventsourcing library, application "ticketing") ==
-- Written as the library writes it (eventsourcing/postgres.py, 9.5) with
-- POSTGRES_LOCK_TIMEOUT=10000, originator ids of type uuid, schema public.

DO $$
BEGIN
    IF to_regtype('public.stored_event_uuid') IS NULL THEN
        CREATE TYPE "public"."stored_event_uuid" AS (originator_id "uuid", originator_version bigint, topic text, state bytea);
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS "public"."ticketing_events" (originator_id "uuid" NOT NULL, originator_version bigint NOT NULL, topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version)) WITH (    autovacuum_enabled = true,    autovacuum_vacuum_threshold = 100000000,    autovacuum_vacuum_scale_factor = 0.5,    autovacuum_analyze_threshold = 1000,    autovacuum_analyze_scale_factor = 0.01);

CREATE UNIQUE INDEX IF NOT EXISTS "ticketing_events_notification_id_idx" ON "public"."ticketing_events" (notification_id ASC);

CREATE OR REPLACE FUNCTION "public"."es_insert_events_uuid"(events "public"."stored_event_uuid"[]) RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$BEGIN    SET LOCAL lock_timeout = '10000s';    NOTIFY "ticketing_events";    RETURN QUERY    INSERT INTO "public"."ticketing_events" AS t (    originator_id, originator_version, topic, state)    SELECT originator_id, originator_version, topic, state    FROM unnest(events)    RETURNING notification_id;END;$BODY$;

CREATE TABLE IF NOT EXISTS "public"."ticketing_snapshots" (originator_id "uuid" NOT NULL, originator_version bigint NOT NULL, topic text, state bytea, PRIMARY KEY (originator_id, originator_version)) WITH (    autovacuum_enabled = true,    autovacuum_vacuum_threshold = 100000000,    autovacuum_vacuum_scale_factor = 0.5,    autovacuum_analyze_threshold = 1000,    autovacuum_analyze_scale_factor = 0.01);

-- The relay's position (the library's tracking recorder "relay"). The
-- library marks a single-row tracking table it created with this row; one
-- without it would be taken for an old multi-row table and rebuilt.
CREATE TABLE IF NOT EXISTS "public"."relay_tracking" (application_name text, notification_id bigint, PRIMARY KEY (application_name))WITH (    autovacuum_enabled = true,    autovacuum_vacuum_threshold = 100000000,    autovacuum_vacuum_scale_factor = 0.5,    autovacuum_analyze_threshold = 1000,    autovacuum_analyze_scale_factor = 0.01);

INSERT INTO "public"."relay_tracking" (application_name, notification_id)
VALUES ('__migration__', 1) ON CONFLICT (application_name) DO NOTHING;

-- == The write side (service/) ==

CREATE TABLE IF NOT EXISTS ticket_numbers (
    tenant_id   text PRIMARY KEY,
    last_number bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS attachment_blobs (
    tenant_id     text NOT NULL,
    attachment_id text NOT NULL,
    ticket_id     uuid NOT NULL,
    sha256        text NOT NULL,
    content       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, attachment_id)
);

-- Auto-assignment's round-robin turn per team, and the log position of the
-- team's last assignment (see service/assignment.py).
CREATE TABLE IF NOT EXISTS assignment_turns (
    tenant_id     text   NOT NULL,
    team          text   NOT NULL,
    turn          bigint NOT NULL DEFAULT 0,
    last_position bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, team)
);

-- Each worker's heartbeat, read by the API's readiness check
-- (store/worker_status.py).
CREATE TABLE IF NOT EXISTS worker_status (
    worker     text        NOT NULL,  -- projections, relay, notifier, ...
    instance   text        NOT NULL,  -- '<host>:<pid>'
    state      text        NOT NULL CHECK (state IN ('running', 'down')),
    reason     text,
    lag        bigint,                -- events behind, if the worker knows
    beat_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker, instance)
);

-- == The notifier (consumers/notify/notifier.py, dispatcher.py) ==
-- notification_deliveries is the ledger that makes every side effect
-- exactly-once from the recipient's view: a row per (event, channel,
-- recipient) is written in the consumer's transaction before anything is
-- sent, so a replayed or duplicated event finds its row and sends nothing
-- new; the sender marks it sent after the provider accepted it, and passes
-- the row's key to providers that take one (Message-ID, webhook id).

CREATE TABLE IF NOT EXISTS notifier_tickets (
    ticket_id      uuid PRIMARY KEY,
    tenant_id      text NOT NULL,
    number         bigint NOT NULL,
    title          text NOT NULL,
    customer_id    text NOT NULL,
    customer_email text,
    assignee_id    text,
    assigned_team  text,
    status         text NOT NULL,
    version        bigint NOT NULL DEFAULT 0  -- of the last event applied
);

-- A database from before these columns gets them (the older code added
-- them at start; a no-op elsewhere).
ALTER TABLE notifier_tickets ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS notification_deliveries (
    delivery_key     text PRIMARY KEY,  -- '<event id>|<channel>|<recipient>'
    tenant_id        text        NOT NULL,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    ticket_id        uuid,
    channel          text        NOT NULL
        CHECK (channel IN ('email', 'sms', 'in_app', 'webhook')),
    recipient        text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    -- A tenant template that failed for this delivery (the built-in one was
    -- sent): [{"part": ..., "error": ...}], for the tenant's admins.
    template_fallback jsonb,
    -- The dispatcher's lanes (consumers/notify/delivery_lanes.py): one per webhook,
    -- and one per tenant for e-mail and for SMS.
    lane text GENERATED ALWAYS AS (
        tenant_id || '|' || channel || '|' || coalesce(payload->>'webhook_id', '')
    ) STORED
);

-- A database from before these columns gets them (the older code added
-- them at start; a no-op elsewhere).
ALTER TABLE notification_deliveries ADD COLUMN IF NOT EXISTS template_fallback jsonb;

ALTER TABLE notification_deliveries ADD COLUMN IF NOT EXISTS lane text
    GENERATED ALWAYS AS (
        tenant_id || '|' || channel || '|' || coalesce(payload->>'webhook_id', '')
    ) STORED;

CREATE INDEX IF NOT EXISTS notification_deliveries_template_fallbacks
    ON notification_deliveries (tenant_id, created_at DESC)
    WHERE template_fallback IS NOT NULL;

CREATE INDEX IF NOT EXISTS notification_deliveries_due
    ON notification_deliveries (next_attempt_at) WHERE status = 'pending';

-- Lets the dispatcher find each lane's oldest due rows without reading a
-- backlog of any size.
CREATE INDEX IF NOT EXISTS notification_deliveries_lanes
    ON notification_deliveries (lane, next_attempt_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS inapp_notifications (
    id          uuid PRIMARY KEY,
    tenant_id   text        NOT NULL,
    user_id     text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    ticket_id   uuid,
    title       text        NOT NULL,
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz,
    UNIQUE (tenant_id, user_id, event_id)
);

CREATE INDEX IF NOT EXISTS inapp_notifications_unread
    ON inapp_notifications (tenant_id, user_id, created_at DESC)
    WHERE read_at IS NULL;

CREATE TABLE IF NOT EXISTS webhooks (
    id           uuid PRIMARY KEY,
    tenant_id    text        NOT NULL,
    url          text        NOT NULL,
    event_types  text[]      NOT NULL,  -- CloudEvent types; empty = all
    secret       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL,
    -- The circuit breaker (consumers/notify/circuit_breaker.py). paused_at and
    -- retry_at are on the service's clock; resumed_at on the database's,
    -- like the deliveries' created_at it is compared with (the give-up
    -- time counts from the later of the two).
    consecutive_failures integer NOT NULL DEFAULT 0,
    paused_at       timestamptz,
    retry_at        timestamptz,
    last_error      text,
    last_failure_at timestamptz,
    resumed_at      timestamptz
);

-- A database from before these columns gets them (the older code added
-- them at start; a no-op elsewhere).
ALTER TABLE webhooks
    ADD COLUMN IF NOT EXISTS consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS paused_at timestamptz,
    ADD COLUMN IF NOT EXISTS retry_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_error text,
    ADD COLUMN IF NOT EXISTS last_failure_at timestamptz,
    ADD COLUMN IF NOT EXISTS resumed_at timestamptz;

CREATE INDEX IF NOT EXISTS webhooks_tenant ON webhooks (tenant_id);

-- == Projection builds (projections/registry.py) ==
-- Which build (schema of read tables) of each projection the queries read.

CREATE TABLE IF NOT EXISTS projection_builds (
    schema_name  text PRIMARY KEY,
    projection   text NOT NULL,
    version      integer NOT NULL,
    state        text NOT NULL CHECK (state IN ('building', 'active', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz
);

CREATE UNIQUE INDEX IF NOT EXISTS projection_builds_one_active
    ON projection_builds (projection) WHERE state = 'active';

CREATE TABLE IF NOT EXISTS projection_rebuild_requests (
    projection   text PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);

-- == The relay (consumers/relay.py) ==

CREATE TABLE IF NOT EXISTS relay_republished (
    application_name text   NOT NULL,
    topic            text   NOT NULL,
    from_position    bigint NOT NULL,  -- the first position republished
    PRIMARY KEY (application_name, topic)
);

-- == Kafka consumers (consumers/kafka/consumer_loop.py) ==

CREATE TABLE IF NOT EXISTS consumer_positions (
    consumer    text   NOT NULL,
    stream      text   NOT NULL,  -- '<topic>:<partition>'
    next_offset bigint NOT NULL,
    -- Every ticket event routed to this partition at or below it is applied
    -- (the relay republishes from the first one that is not).
    log_position bigint,
    -- The topic's partition count it was recorded under (routing).
    partitions   integer,
    -- The identity of the record at next_offset - 1.
    last_record  text,
    PRIMARY KEY (consumer, stream)
);

-- A database from before these columns gets them (the older code added
-- them at start; a no-op elsewhere).
ALTER TABLE consumer_positions
    ADD COLUMN IF NOT EXISTS log_position bigint,
    ADD COLUMN IF NOT EXISTS partitions   integer,
    ADD COLUMN IF NOT EXISTS last_record  text;

CREATE TABLE IF NOT EXISTS consumer_processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- == The timers (consumers/timers/tables.py says what the rows mean) ==

CREATE TABLE IF NOT EXISTS timer_deadlines (
    ticket_id uuid        NOT NULL,
    kind      text        NOT NULL,  -- sla_warning, sla_breach, escalation, workflow
    key       text        NOT NULL,  -- the SLA target, or the rule's name
    tenant_id text        NOT NULL,
    due_at    timestamptz NOT NULL,
    -- Failed commands are retried later (real time): how often, and when.
    attempts  integer     NOT NULL DEFAULT 0,
    retry_at  timestamptz,
    PRIMARY KEY (ticket_id, kind, key)
);

CREATE INDEX IF NOT EXISTS timer_deadlines_due_at ON timer_deadlines (due_at);

CREATE TABLE IF NOT EXISTS timer_tickets (
    ticket_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    -- The tenant settings the rows were computed under, and whether the
    -- ticket was still active: a settings change recomputes its tenant's
    -- active ones.
    tenant_id text,
    settings_version bigint NOT NULL DEFAULT 0,
    active boolean NOT NULL DEFAULT true
);

-- A database from before these columns gets them (the older code added
-- them at start; a no-op elsewhere).
ALTER TABLE timer_tickets ADD COLUMN IF NOT EXISTS tenant_id text;

ALTER TABLE timer_tickets ADD COLUMN IF NOT EXISTS settings_version bigint
    NOT NULL DEFAULT 0;

ALTER TABLE timer_tickets ADD COLUMN IF NOT EXISTS active boolean
    NOT NULL DEFAULT true;

CREATE INDEX IF NOT EXISTS timer_tickets_active
    ON timer_tickets (tenant_id, settings_version) WHERE active;

-- == Analysts' access (projections/analytics.py) ==
-- The schema of the analytics views (re-created at every swap) and the
-- roles given read access to them, granted again at each swap.

CREATE SCHEMA IF NOT EXISTS analytics;

CREATE TABLE IF NOT EXISTS public.analytics_grants (
    role       text PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

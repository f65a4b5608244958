"""Tables of the notifier: what to tell whom, and what was delivered.

``notification_deliveries`` is the ledger that makes every side effect
exactly-once from the recipient's view: a row per (event, channel,
recipient) is written in the consumer's transaction before anything is
sent, so a replayed or duplicated event finds its row and sends nothing
new; the sender marks it sent after the provider accepted it, and passes
the row's key to providers that take one (Message-ID, webhook id).

E-mail to one person about one ticket may be merged into one mail
(``consumers/mail_digest.py``): the first update's row is held until
``hold_until`` (service clock), ``merge_key`` says which rows may join it,
and each later update's row names it in ``merged_into`` and shares its fate.
"""

NOTIFICATION_DDL = """
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
-- Tables created before the column existed.
ALTER TABLE notifier_tickets ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
ALTER TABLE notifier_tickets ADD COLUMN IF NOT EXISTS customer_name text;

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
    sent_at          timestamptz
);
-- A tenant template that failed for this delivery (the built-in one was
-- sent): [{"part": ..., "error": ...}], for the tenant's admins.
ALTER TABLE notification_deliveries
    ADD COLUMN IF NOT EXISTS template_fallback jsonb;
CREATE INDEX IF NOT EXISTS notification_deliveries_template_fallbacks
    ON notification_deliveries (tenant_id, created_at DESC)
    WHERE template_fallback IS NOT NULL;
CREATE INDEX IF NOT EXISTS notification_deliveries_due
    ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
-- The dispatcher's lanes (consumers/delivery_lanes.py): one per webhook, and
-- one per tenant for e-mail and for SMS. The index lets it find each lane's
-- oldest due rows without reading a backlog of any size.
ALTER TABLE notification_deliveries ADD COLUMN IF NOT EXISTS lane text
    GENERATED ALWAYS AS (
        tenant_id || '|' || channel || '|' || coalesce(payload->>'webhook_id', '')
    ) STORED;
CREATE INDEX IF NOT EXISTS notification_deliveries_lanes
    ON notification_deliveries (lane, next_attempt_at) WHERE status = 'pending';
-- Merging a person's e-mail about a ticket (consumers/mail_digest.py).
-- Nullable without defaults: adding them rewrites nothing.
ALTER TABLE notification_deliveries
    ADD COLUMN IF NOT EXISTS hold_until timestamptz,
    ADD COLUMN IF NOT EXISTS merge_key text,
    ADD COLUMN IF NOT EXISTS merged_into text;
CREATE INDEX IF NOT EXISTS notification_deliveries_open_digests
    ON notification_deliveries (merge_key)
    WHERE status = 'pending' AND merge_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS notification_deliveries_merged
    ON notification_deliveries (merged_into) WHERE merged_into IS NOT NULL;

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
    created_by   text        NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_tenant ON webhooks (tenant_id);
-- The circuit breaker (consumers/circuit_breaker.py). paused_at and retry_at
-- are on the service's clock; resumed_at on the database's, like the
-- deliveries' created_at it is compared with (the give-up time counts from
-- the later of the two).
ALTER TABLE webhooks
    ADD COLUMN IF NOT EXISTS consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS paused_at timestamptz,
    ADD COLUMN IF NOT EXISTS retry_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_error text,
    ADD COLUMN IF NOT EXISTS last_failure_at timestamptz,
    ADD COLUMN IF NOT EXISTS resumed_at timestamptz;
"""

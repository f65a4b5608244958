-- depends: 0004.inbound-email
-- Privacy (issue 16): the keys that seal each ticket's personal data, the
-- erasure and export requests, and the addresses nobody may e-mail again.

-- One key per ticket (and a new one if the ticket is written to after its
-- key was destroyed), belonging to the ticket's customer: erasing a
-- customer destroys all of theirs, a retention period one ticket's.
-- A destroyed key keeps its row (its secret NULL), so an event sealed with
-- it reads as erased rather than as a missing key.
CREATE TABLE IF NOT EXISTS privacy_keys (
    key_id       uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    subject_id   text        NOT NULL,
    ticket_id    uuid        NOT NULL,
    secret       bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CHECK ((secret IS NULL) = (destroyed_at IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS privacy_keys_active_per_ticket
    ON privacy_keys (ticket_id) WHERE secret IS NOT NULL;
CREATE INDEX IF NOT EXISTS privacy_keys_subject
    ON privacy_keys (tenant_id, subject_id);

-- Every erasure and export: who asked, when, and (for an erasure) its
-- receipt. Holds ids and counts, never the erased data.
CREATE TABLE IF NOT EXISTS privacy_requests (
    request_id   uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('erasure', 'export')),
    subject_id   text        NOT NULL,
    ticket_id    uuid,
    reason       text        NOT NULL,
    requested_by jsonb       NOT NULL,
    requested_at timestamptz NOT NULL,
    receipt      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS privacy_requests_tenant_time
    ON privacy_requests (tenant_id, requested_at DESC);

-- Addresses of erased customers, as digests (the address itself is what
-- was erased): the notifier sends them nothing more.
CREATE TABLE IF NOT EXISTS privacy_suppressed_addresses (
    tenant_id      text        NOT NULL,
    address_sha256 text        NOT NULL,
    suppressed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address_sha256)
);

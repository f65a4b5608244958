-- depends: 0003.assignment-workload
-- Inbound e-mail (issue 15): what each message became, the mailboxes to
-- read, and the addresses mail to which bounces.

-- The tenants whose settings name mailboxes, so that the mail-in worker
-- need not read every tenant's settings to find them. Written by every
-- settings replace (service/tenant_config.py); `settings_version` only
-- ever grows.
CREATE TABLE IF NOT EXISTS inbound_mail_tenants (
    tenant_id        text        PRIMARY KEY,
    settings_version integer     NOT NULL,
    mailboxes        integer     NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per message a tenant received, by its key (`mid:<Message-ID>`,
-- else `sha256:<digest of the bytes>`): a message becomes at most one
-- ticket or comment, whatever crashes and redeliveries happen. `raw` is
-- kept while the message is held back (a sender over the rate) and for a
-- dead letter; it is cleared once the message has become something.
CREATE TABLE IF NOT EXISTS inbound_messages (
    tenant_id     text        NOT NULL,
    message_key   text        NOT NULL,
    source        text        NOT NULL,
    sender        text,
    subject       text,
    outcome       text        NOT NULL,
    reason        text,
    ticket_id     uuid,
    ticket_number bigint,
    comment_id    text,
    raw           bytea,
    size          integer     NOT NULL,
    received_at   timestamptz NOT NULL,
    processed_at  timestamptz,
    PRIMARY KEY (tenant_id, message_key),
    CONSTRAINT inbound_messages_outcome CHECK (outcome IN
        ('ticket', 'comment', 'follow-up', 'ignored', 'bounce', 'held',
         'dead-letter'))
);
-- A sender's pace (messages in the last minute).
CREATE INDEX IF NOT EXISTS inbound_messages_sender_pace
    ON inbound_messages (tenant_id, sender, received_at);
-- The dead letters an admin reads, and the held messages to release.
CREATE INDEX IF NOT EXISTS inbound_messages_waiting
    ON inbound_messages (tenant_id, outcome, received_at)
    WHERE outcome IN ('held', 'dead-letter');

-- The IMAP messages already taken, by mailbox, UIDVALIDITY and UID: a
-- message seen again (the worker stopped between storing and flagging it)
-- is flagged without being read again.
CREATE TABLE IF NOT EXISTS inbound_mailbox_uids (
    tenant_id   text   NOT NULL,
    mailbox     text   NOT NULL,
    uidvalidity bigint NOT NULL,
    uid         bigint NOT NULL,
    message_key text   NOT NULL,
    PRIMARY KEY (tenant_id, mailbox, uidvalidity, uid)
);

-- Addresses whose mail bounced permanently: the notifier sends them no
-- e-mail until mail from the address arrives again (it works after all)
-- or an admin clears it; a ticket whose customer moves to another address
-- is mailed at the new one.
CREATE TABLE IF NOT EXISTS mail_bounces (
    tenant_id  text        NOT NULL,
    address    text        NOT NULL,
    status     text,
    diagnostic text,
    ticket_id  uuid,
    bounces    integer     NOT NULL DEFAULT 1,
    first_at   timestamptz NOT NULL,
    last_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, address)
);

-- `[#N]` in a reply's subject names a ticket by its number.
CREATE INDEX IF NOT EXISTS ticket_workload_number
    ON ticket_workload (tenant_id, number);

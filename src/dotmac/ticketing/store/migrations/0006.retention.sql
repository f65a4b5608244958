-- depends: 0005.privacy
-- Retention (issue 16): the tenants whose settings erase closed tickets'
-- personal data after a while, so that the timers' sweep need not read
-- every tenant's settings to find them. Written by every settings replace
-- (service/tenant_config.py), like inbound_mail_tenants; `settings_version`
-- only ever grows. The periods themselves stay in the settings.
CREATE TABLE IF NOT EXISTS retention_tenants (
    tenant_id        text        PRIMARY KEY,
    settings_version integer     NOT NULL,
    erases           boolean     NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

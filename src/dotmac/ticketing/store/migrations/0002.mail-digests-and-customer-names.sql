-- depends: 0001.initial-schema
-- E-mail a person reads (issue 11, point 6): the customer's name on the
-- notifier's copy of a ticket, and merging a person's e-mail about a ticket
-- into one mail (consumers/notify/mail_digest.py): the first update's row is
-- held until hold_until (service clock), merge_key says which rows may join
-- it, and each later update's row names it in merged_into and shares its fate.
--
-- Nullable columns without defaults: adding them rewrites no table. IF NOT
-- EXISTS: a database that ran the code of that change before migrations has
-- them already and is adopted unchanged.

ALTER TABLE notifier_tickets ADD COLUMN IF NOT EXISTS customer_name text;

ALTER TABLE notification_deliveries
    ADD COLUMN IF NOT EXISTS hold_until timestamptz,
    ADD COLUMN IF NOT EXISTS merge_key text,
    ADD COLUMN IF NOT EXISTS merged_into text;
CREATE INDEX IF NOT EXISTS notification_deliveries_open_digests
    ON notification_deliveries (merge_key)
    WHERE status = 'pending' AND merge_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS notification_deliveries_merged
    ON notification_deliveries (merged_into) WHERE merged_into IS NOT NULL;

"""The inbound e-mail worker: tenants' IMAP mailboxes into tickets and comments."""

"""The secrets of a tenant settings document, and the document without them.

The integrations' credentials (``integrations.<name>.auth``: a bearer
``token``, a basic ``password``, a header's ``value``; the models are
``BearerAuth``, ``BasicAuth`` and ``HeaderAuth`` of ``schemas.tenant_config``)
are secrets. ``GET /api/v1/settings`` returns them, since ``PUT`` replaces
the document whole and its writer has to send them back. The settings
history and past versions (``GET /api/v1/settings/history``,
``?version=N``) never do: a credential rotated away stays unreadable, and
an audit trail is read by more eyes than the settings form.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

#: What a secret reads as where it is withheld. Not printable ASCII, which
#: every credential field requires: a document copied from the history and
#: sent back with ``PUT`` is refused (422 naming the field) instead of
#: storing this as the credential.
REDACTED = "••••••••"

#: The secret field of each kind of integration auth (its ``type``).
SECRET_FIELDS: Mapping[str, str] = MappingProxyType(
    {"bearer": "token", "basic": "password", "header": "value"}
)


def without_secrets(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with every secret replaced by :data:`REDACTED`.

    Only values change, never the shape: whatever is at a path of the
    document is at the same path of the copy, redacted.
    """
    redacted = copy.deepcopy(dict(document))
    for mailbox in _mailboxes(redacted):
        if isinstance(mailbox, dict) and "password" in mailbox:
            mailbox["password"] = REDACTED
    integrations = redacted.get("integrations")
    if not isinstance(integrations, Mapping):
        return redacted
    for integration in integrations.values():
        auth = integration.get("auth") if isinstance(integration, Mapping) else None
        if not isinstance(auth, dict):
            continue
        # Every secret field the auth has, whatever its type says: a secret
        # stays withheld in a document that labels it wrongly.
        for name in set(SECRET_FIELDS.values()) & set(auth):
            auth[name] = REDACTED
    return redacted


# -- write-only secrets: the mailboxes' passwords ------------------------------------
#
# An IMAP password is never read back, not even by GET /api/v1/settings: a
# PUT without it keeps the stored one (by mailbox name). Unlike the
# integrations' credentials a form need not carry it back.


def _mailboxes(document: Mapping[str, Any]) -> list[Any]:
    section = document.get("inbound_email")
    if not isinstance(section, Mapping):
        return []
    mailboxes = section.get("mailboxes")
    return mailboxes if isinstance(mailboxes, list) else []


def without_write_only(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` without the mailboxes' passwords."""
    copied = copy.deepcopy(dict(document))
    for mailbox in _mailboxes(copied):
        if isinstance(mailbox, dict):
            mailbox.pop("password", None)
    return copied


def with_kept_passwords(
    document: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[int]]:
    """``document`` with each mailbox that has no password given the stored
    password of the mailbox of the same name; and the positions of the
    mailboxes that have none either way (a new mailbox needs one)."""
    stored = {
        m.get("name"): m.get("password")
        for m in _mailboxes(previous or {})
        if isinstance(m, Mapping)
    }
    kept = copy.deepcopy(dict(document))
    missing = []
    for index, mailbox in enumerate(_mailboxes(kept)):
        if not isinstance(mailbox, dict) or mailbox.get("password"):
            continue
        password = stored.get(mailbox.get("name"))
        if password:
            mailbox["password"] = password
        else:
            missing.append(index)
    return kept, missing

"""Rendering notifications: sandboxed Jinja2 templates, overridable per tenant.

Each notification kind has four parts under ``consumers/templates/<kind>/``:
``subject.txt`` (one line), ``text.txt`` (the plain-text e-mail and in-app
body), ``html.html`` (the HTML e-mail, autoescaped; may extend
``_layout.html``) and ``sms.txt`` (a short SMS text).

A tenant overrides any part in configuration, in the shape the tenant
settings use: ``{"tenants": {"acme": {"templates": {"ticket_created":
{"subject": "...", "html": "..."}}}}}``. Templates are written by tenant
admins, so they run in Jinja's sandbox (no attribute access to internals,
no mutation of the context) and HTML output is autoescaped: a ticket title
such as ``<script>`` arrives as text. A tenant template that does not
compile or fails to render is logged and the built-in one is used: a typo
in a template must not stop a customer's notifications.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from jinja2 import FileSystemLoader, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dotmac.ticketing.consumers.notification_rules import (
    KINDS,
    TicketContext,
    satisfaction_url,
    ticket_url,
)
from dotmac.ticketing.domain.acknowledgment import readable

log = structlog.get_logger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"

Part = Literal["subject", "text", "html", "sms"]
PARTS: tuple[Part, ...] = ("subject", "text", "html", "sms")
_FILES: dict[Part, str] = {
    "subject": "subject.txt",
    "text": "text.txt",
    "html": "html.html",
    "sms": "sms.txt",
}

SUBJECT_MAX = 200
SMS_MAX = 320  # two SMS segments
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderedNotification:
    subject: str
    text: str
    html: str
    sms: str


class NotificationTemplates:
    """The built-in templates plus each tenant's overrides."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        template_dir: Path = TEMPLATE_DIR,
    ) -> None:
        loader = FileSystemLoader(template_dir)
        # Two sandboxes over the same files: HTML autoescaped, the text
        # parts verbatim (escaping "&" in a plain-text e-mail is a bug too).
        # The immutable sandbox also refuses list.append and the like.
        self._text_env = ImmutableSandboxedEnvironment(
            loader=loader, autoescape=False, keep_trailing_newline=False
        )
        self._html_env = ImmutableSandboxedEnvironment(loader=loader, autoescape=True)
        self._overrides: dict[tuple[str, str, Part], Template] = {}
        tenants = (config or {}).get("tenants") or {}
        for tenant_id, tenant in tenants.items():
            for kind, parts in ((tenant or {}).get("templates") or {}).items():
                for part, source in (parts or {}).items():
                    self._compile_override(str(tenant_id), str(kind), part, source)

    def _compile_override(
        self, tenant_id: str, kind: str, part: str, source: Any
    ) -> None:
        if part not in PARTS or not isinstance(source, str):
            log.warning(
                "ignoring unknown template part",
                tenant_id=tenant_id,
                kind=kind,
                part=part,
            )
            return
        env = self._html_env if part == "html" else self._text_env
        try:
            self._overrides[(tenant_id, kind, part)] = env.from_string(source)
        except TemplateError as error:
            log.warning(
                "tenant template does not compile; using the built-in one",
                tenant_id=tenant_id,
                kind=kind,
                part=part,
                error=str(error),
            )

    def render(
        self, kind: str, tenant_id: str, context: Mapping[str, Any]
    ) -> RenderedNotification:
        if kind not in KINDS:
            raise ValueError(f"no templates for notification kind {kind!r}")
        parts = {
            part: self._render_part(kind, tenant_id, part, context) for part in PARTS
        }
        return RenderedNotification(
            subject=_one_line(parts["subject"], SUBJECT_MAX),
            text=parts["text"].strip() + "\n",
            html=parts["html"].strip() + "\n",
            sms=_one_line(parts["sms"], SMS_MAX),
        )

    def _render_part(
        self, kind: str, tenant_id: str, part: Part, context: Mapping[str, Any]
    ) -> str:
        override = self._overrides.get((tenant_id, kind, part))
        if override is not None:
            try:
                return override.render(context)
            except TemplateError as error:  # includes SecurityError
                log.warning(
                    "tenant template failed; using the built-in one",
                    tenant_id=tenant_id,
                    kind=kind,
                    part=part,
                    error=str(error),
                )
        env = self._html_env if part == "html" else self._text_env
        return env.get_template(f"{kind}/{_FILES[part]}").render(context)


def _one_line(text: str, limit: int) -> str:
    """Collapse whitespace (no header injection, no broken SMS) and cap."""
    line = _WHITESPACE.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def template_context(
    event: Mapping[str, Any],
    ticket: TicketContext,
    *,
    audience: str,
    person_id: str | None,
    public_url: str,
    reply_by: datetime | None = None,
) -> dict[str, Any]:
    """What a template sees: the ticket, the event's fields, who did it, links.

    ``event`` is the CloudEvent's ``data`` (``event.body`` of a comment,
    ``event.resolution``, ``event.team``…), ``event_type`` its type.
    ``reply_by`` (the acknowledgment of a new ticket) is the time an agent
    will reply by, as text such as ``2026-03-02 09:15 UTC``; None when no
    time is promised.
    """
    data: Mapping[str, Any] = event.get("data") or {}
    actor = data.get("actor") or {}
    return {
        "tenant_id": ticket.tenant_id,
        "event_type": event.get("type"),
        "event_id": event.get("id"),
        "event": dict(data),
        "actor": {"id": actor.get("id"), "role": actor.get("role")},
        "recipient": {"id": person_id, "audience": audience},
        "ticket": {
            "id": ticket.ticket_id,
            "number": ticket.number,
            "title": ticket.title,
            "status": ticket.status,
            "customer_id": ticket.customer_id,
            "assignee_id": ticket.assignee_id,
            "assigned_team": ticket.assigned_team,
            "url": ticket_url(public_url, ticket.ticket_id),
        },
        "public_url": public_url,
        "satisfaction_url": satisfaction_url(public_url, ticket.ticket_id),
        "reply_by": None if reply_by is None else readable(reply_by),
    }

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
such as ``<script>`` arrives as text. They are compiled and rendered in a
worker process within a time and size budget (``template_sandbox.py``
says why a process). A tenant template that does not compile, raises
anything, runs out of time or grows too large is logged, reported on the
rendered notification (``fallbacks``, kept on the delivery for the
tenant's admins) and the built-in one is used: a typo or a hostile loop in
a template must neither stop nor drop a customer's notifications.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from jinja2 import FileSystemLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dotmac.ticketing.consumers.notification_rules import (
    KINDS,
    TicketContext,
    satisfaction_url,
    ticket_url,
)
from dotmac.ticketing.consumers.template_sandbox import (
    TemplateRenderFailed,
    TemplateSandbox,
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
class TemplateFallback:
    """A tenant's template part that failed; the built-in one was used."""

    part: Part
    error: str

    def as_record(self) -> dict[str, str]:
        return {"part": self.part, "error": self.error}


@dataclass(frozen=True)
class RenderedNotification:
    subject: str
    text: str
    html: str
    sms: str
    fallbacks: tuple[TemplateFallback, ...] = ()


class NotificationTemplates:
    """The built-in templates plus each tenant's overrides.

    ``sandbox`` renders the overrides (default: a sandbox with the default
    budget); call ``close`` to end its worker processes.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        template_dir: Path = TEMPLATE_DIR,
        sandbox: TemplateSandbox | None = None,
    ) -> None:
        loader = FileSystemLoader(template_dir)
        # Two sandboxes over the same files: HTML autoescaped, the text
        # parts verbatim (escaping "&" in a plain-text e-mail is a bug too).
        # The immutable sandbox also refuses list.append and the like.
        self._text_env = ImmutableSandboxedEnvironment(
            loader=loader, autoescape=False, keep_trailing_newline=False
        )
        self._html_env = ImmutableSandboxedEnvironment(loader=loader, autoescape=True)
        self._sandbox = sandbox or TemplateSandbox()
        # Sources only: even compiling untrusted text happens in the sandbox
        # (Jinja folds constant expressions such as 'x' * 10**10 then).
        self._overrides: dict[tuple[str, str, Part], str] = {}
        tenants = (config or {}).get("tenants") or {}
        for tenant_id, tenant in tenants.items():
            for kind, parts in ((tenant or {}).get("templates") or {}).items():
                for part, source in (parts or {}).items():
                    self._add_override(str(tenant_id), str(kind), part, source)

    def close(self) -> None:
        self._sandbox.close()

    def _add_override(self, tenant_id: str, kind: str, part: str, source: Any) -> None:
        if part not in PARTS or not isinstance(source, str):
            log.warning(
                "ignoring unknown template part",
                tenant_id=tenant_id,
                kind=kind,
                part=part,
            )
            return
        self._overrides[(tenant_id, kind, part)] = source

    def render(
        self, kind: str, tenant_id: str, context: Mapping[str, Any]
    ) -> RenderedNotification:
        if kind not in KINDS:
            raise ValueError(f"no templates for notification kind {kind!r}")
        parts: dict[Part, str] = {}
        fallbacks: list[TemplateFallback] = []
        for part in PARTS:
            source = self._overrides.get((tenant_id, kind, part))
            own = (
                None if source is None else self._render_override(source, part, context)
            )
            if isinstance(own, TemplateFallback):
                fallbacks.append(own)
                log.warning(
                    "tenant template failed; using the built-in one",
                    tenant_id=tenant_id,
                    kind=kind,
                    part=part,
                    error=own.error,
                )
            parts[part] = (
                own
                if isinstance(own, str)
                else self._render_builtin(kind, part, context)
            )
        return RenderedNotification(
            subject=_one_line(parts["subject"], SUBJECT_MAX),
            text=parts["text"].strip() + "\n",
            html=parts["html"].strip() + "\n",
            sms=_one_line(parts["sms"], SMS_MAX),
            fallbacks=tuple(fallbacks),
        )

    def _render_override(
        self, source: str, part: Part, context: Mapping[str, Any]
    ) -> str | TemplateFallback:
        """The tenant's version of the part, or why it cannot be used."""
        try:
            return self._sandbox.render(source, context, html=part == "html")
        except TemplateRenderFailed as error:
            return TemplateFallback(part=part, error=str(error)[:500])

    def _render_builtin(self, kind: str, part: Part, context: Mapping[str, Any]) -> str:
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

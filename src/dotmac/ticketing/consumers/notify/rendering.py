"""Rendering notifications: sandboxed Jinja2 templates, overridable per tenant.

Each notification kind has four parts under ``consumers/notify/templates/<kind>/``:
``subject.txt`` (one line), ``text.txt`` (the plain-text e-mail and in-app
body; extends ``_layout.txt``), ``html.html`` (the HTML e-mail,
autoescaped; extends ``_layout.html``) and ``sms.txt`` (a short SMS text).
The layouts greet a customer by name and end an agent's mail with the
ticket's link; a kind's own words are its ``body`` block, which is also
what a mail listing several updates shows of each (``email_digest``).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from jinja2 import FileSystemLoader, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dotmac.ticketing.consumers.notify.mail_digest import heading, headline
from dotmac.ticketing.consumers.notify.rules import (
    EMAIL_DIGEST,
    KINDS,
    MailPreferences,
    TenantDirectory,
    TicketContext,
    is_automation,
    ticket_url,
)
from dotmac.ticketing.consumers.notify.template_sandbox import (
    TemplateRenderFailed,
    TemplateSandbox,
)
from dotmac.ticketing.domain.acknowledgment import instant
from dotmac.ticketing.schemas.locales import readable_moment
from dotmac.ticketing.service.satisfaction_links import (
    RATING_LABELS,
    page_url,
    rating_urls,
)

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
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)


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
    # The kind's own words, without greeting and footer: what a mail that
    # lists several updates shows of this one.
    text_body: str = ""
    html_body: str = ""


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
        own_parts: set[Part] = set()
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
            if isinstance(own, str):
                own_parts.add(part)
            parts[part] = (
                own
                if isinstance(own, str)
                else self._render_builtin(kind, part, context)
            )
        builtin = {p for p in PARTS if p not in own_parts}
        text_body = (
            self._render_builtin_body(kind, "text", context)
            if "text" in builtin
            else parts["text"]
        )
        html_body = (
            self._render_builtin_body(kind, "html", context)
            if "html" in builtin
            else _inner_body(parts["html"])
        )
        return RenderedNotification(
            subject=_one_line(parts["subject"], SUBJECT_MAX),
            text=parts["text"].strip() + "\n",
            html=parts["html"].strip() + "\n",
            sms=_one_line(parts["sms"], SMS_MAX),
            fallbacks=tuple(fallbacks),
            text_body=text_body.strip() + "\n",
            html_body=html_body.strip() + "\n",
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
        return self._builtin(kind, part).render(context)

    def _render_builtin_body(
        self, kind: str, part: Part, context: Mapping[str, Any]
    ) -> str:
        """Only the ``body`` block of a built-in part (the whole part if none)."""
        template = self._builtin(kind, part)
        block = template.blocks.get("body")
        if block is None:
            return template.render(context)
        return "".join(block(template.new_context(dict(context))))

    def _builtin(self, kind: str, part: Part) -> Template:
        env = self._html_env if part == "html" else self._text_env
        return env.get_template(f"{kind}/{_FILES[part]}")

    def render_digest(
        self,
        tenant_id: str,
        context: Mapping[str, Any],
        updates: Sequence[Mapping[str, Any]],
    ) -> RenderedNotification:
        """One mail listing ``updates`` (each ``kind``, ``subject``,
        ``text_body``, ``html_body``, ``at``), in the words of the
        ``email_digest`` templates; ``context`` is the latest update's."""
        number = int(context["ticket"]["number"])
        listed = [
            {
                "kind": u.get("kind"),
                "subject": u.get("subject", ""),
                "heading": heading(str(u.get("subject", "")), number),
                "text": u.get("text_body", ""),
                "html_body": u.get("html_body", ""),
                "at": u.get("at"),
            }
            for u in updates
        ]
        return self.render(
            EMAIL_DIGEST,
            tenant_id,
            {**context, "updates": listed, "headline": dict(headline(listed))},
        )


def _one_line(text: str, limit: int) -> str:
    """Collapse whitespace (no header injection, no broken SMS) and cap."""
    line = _WHITESPACE.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _inner_body(html: str) -> str:
    """What is between ``<body>`` and ``</body>`` (all of it when neither)."""
    match = _BODY.search(html)
    return match.group(1) if match else html


def person_name(
    person_id: str | None,
    ticket: TicketContext,
    directory: TenantDirectory | None,
) -> str | None:
    """How mail names someone: the customer by the ticket's name for them,
    else their address; an agent by the directory's name. None when
    neither is known (the caller shows the id)."""
    if person_id is None:
        return None
    if person_id == ticket.customer_id:
        return ticket.customer_name or ticket.customer_email
    agent = directory.agent(ticket.tenant_id, person_id) if directory else None
    return agent.name if agent is not None and agent.name else None


def template_context(
    event: Mapping[str, Any],
    ticket: TicketContext,
    *,
    audience: str,
    person_id: str | None,
    public_url: str,
    reply_by: datetime | None = None,
    directory: TenantDirectory | None = None,
    preferences: MailPreferences | None = None,
    satisfaction_token: str | None = None,
) -> dict[str, Any]:
    """What a template sees: the ticket, the event's fields, who did it, links.

    ``event`` is the CloudEvent's ``data`` (``event.body`` of a comment,
    ``event.resolution``, ``event.team``…), ``event_type`` its type.
    People are named (``actor.name``, ``recipient.name``,
    ``ticket.customer_name``) as :func:`person_name` says, the actor by id
    when nothing better is known; ``actor.automated`` is true for a
    workflow step or timer. Times are text in the tenant's zone and
    locale (``preferences``): ``reply_by`` (the acknowledgment of a new
    ticket: when an agent will reply; None when no time is promised),
    ``due_at`` (an SLA alert's due time) and ``event_time``. The
    resolution carries ``satisfaction_links`` (one per rating, with
    ``rating``, ``label`` and ``url``) and ``satisfaction_url`` (a page
    that asks), when the deployment signs links.
    """
    data: Mapping[str, Any] = event.get("data") or {}
    actor = data.get("actor") or {}
    prefs = preferences or MailPreferences()

    def readable(moment: Any) -> str | None:
        at = instant(moment)
        if at is None:
            return None
        return readable_moment(at, timezone=prefs.timezone, locale=prefs.locale)

    actor_id = actor.get("id")
    automated = is_automation(actor)
    recipient_name = (
        ticket.customer_name
        if audience == "customer"
        else person_name(person_id, ticket, directory)
    )
    links = (
        [
            link | {"label": RATING_LABELS[int(str(link["rating"]))]}
            for link in rating_urls(public_url, satisfaction_token)
        ]
        if satisfaction_token
        else []
    )
    return {
        "tenant_id": ticket.tenant_id,
        "event_type": event.get("type"),
        "event_id": event.get("id"),
        "event": dict(data),
        "actor": {
            "id": actor_id,
            "role": actor.get("role"),
            "name": (None if automated else person_name(actor_id, ticket, directory))
            or actor_id,
            "automated": automated,
        },
        "recipient": {"id": person_id, "audience": audience, "name": recipient_name},
        "ticket": {
            "id": ticket.ticket_id,
            "number": ticket.number,
            "title": ticket.title,
            "status": ticket.status,
            "customer_id": ticket.customer_id,
            "customer_name": person_name(ticket.customer_id, ticket, directory)
            or ticket.customer_id,
            "assignee_id": ticket.assignee_id,
            "assignee_name": person_name(ticket.assignee_id, ticket, directory)
            or ticket.assignee_id,
            "assigned_team": ticket.assigned_team,
            "url": ticket_url(public_url, ticket.ticket_id),
        },
        "public_url": public_url,
        "satisfaction_url": (
            page_url(public_url, satisfaction_token) if satisfaction_token else None
        ),
        "satisfaction_links": links,
        "reply_by": readable(reply_by),
        "due_at": readable(data.get("due_at")),
        "event_time": readable(event.get("time")),
        "language": prefs.locale.split("_")[0],
        "locale": prefs.locale,
        "timezone": prefs.timezone,
    }

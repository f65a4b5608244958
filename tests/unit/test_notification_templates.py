"""Rendering: every kind renders, HTML is escaped, tenants override safely."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dotmac.ticketing.consumers.notify.rendering import (
    SMS_MAX,
    NotificationTemplates,
    template_context,
)
from dotmac.ticketing.consumers.notify.rules import (
    EMAIL_DIGEST,
    KINDS,
    ConfigTenantDirectory,
    MailPreferences,
    TicketContext,
)
from tests.notifications.events import TicketStory, agent_actor, customer_actor

TICKET = TicketContext(
    ticket_id="3f0c6a8e-8d0f-4a53-9a55-2f4a1c0f6a11",
    tenant_id="acme",
    number=42,
    title='Login <script>alert("x")</script> & co',
    customer_id="cust-1",
    customer_email="cust-1@example.test",
    assignee_id="agent-1",
    assigned_team="Support",
    status="open",
)


#: The ticket another one is merged into.
OTHER_TICKET = "9b1d7c3e-5a2f-4e8b-8c6d-1f0e2d3c4b5a"


def render_context(event: dict, audience: str = "customer") -> dict:
    return template_context(
        event,
        TICKET,
        audience=audience,
        person_id="cust-1",
        public_url="https://help.acme.test",
    )


def event_for(kind: str) -> dict:
    story = TicketStory()
    return {
        "ticket_created": story.created,
        "ticket_assigned": story.assigned("agent-1", "Support"),
        "comment_added": story.commented("Line one\nLine <two>", internal=True),
        "comment_reply": story.commented("Try again & tell me"),
        "ticket_escalated": story.escalated("Engineering"),
        "escalation_requested": story.next(
            "escalation_requested",
            level=1,
            team="Engineering",
            rule="critical_escalation",
            reason="rule critical_escalation: 1 h since last update",
        ),
        "sla_warning": story.next("sla_warning", target="resolution"),
        "sla_breached": story.next("sla_breached", target="first_response"),
        "ticket_resolved": story.resolved("Reset the <password>"),
        "request_merged": story.merged(OTHER_TICKET, into_number=41),
        "ticket_merged": story.merged(OTHER_TICKET, into_number=41),
        "ticket_reopened": story.next(
            "ticket_reopened", actor=customer_actor(), reason="Still <broken>"
        ),
    }[kind]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != EMAIL_DIGEST])
def test_every_kind_renders_all_parts(kind: str) -> None:
    rendered = NotificationTemplates().render(
        kind, "acme", render_context(event_for(kind))
    )
    assert "#42" in rendered.subject
    assert "\n" not in rendered.subject
    assert "42" in rendered.text
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "\n" not in rendered.sms
    assert 0 < len(rendered.sms) <= SMS_MAX


def test_the_acknowledgment_says_when_an_agent_will_reply() -> None:
    due = datetime(2031, 3, 3, 10, 0, tzinfo=UTC)
    context = template_context(
        event_for("ticket_created"),
        TICKET,
        audience="customer",
        person_id="cust-1",
        public_url="https://help.acme.test",
        reply_by=due,
    )
    rendered = NotificationTemplates().render("ticket_created", "acme", context)
    assert rendered.subject.startswith("[#42] We received your request")
    promised = "Monday, March 3, 2031, 10:00 AM UTC"
    assert f"An agent will reply by {promised}." in rendered.text
    assert promised in rendered.html
    assert f"reply by {promised}" in rendered.sms
    # Without a running first-response clock, no time is promised.
    unknown = NotificationTemplates().render(
        "ticket_created", "acme", render_context(event_for("ticket_created"))
    )
    assert "An agent will reply as soon as possible." in unknown.text
    assert "UTC" not in unknown.text + unknown.sms


def test_html_is_escaped_and_text_is_not() -> None:
    rendered = NotificationTemplates().render(
        "comment_reply", "acme", render_context(event_for("comment_reply"))
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "Try again &amp; tell me" in rendered.html
    assert '<script>alert("x")</script> & co' in rendered.text
    assert "Try again & tell me" in rendered.text


def test_resolution_carries_one_click_rating_links() -> None:
    context = template_context(
        event_for("ticket_resolved"),
        TICKET,
        audience="customer",
        person_id="cust-1",
        public_url="https://help.acme.test/",
        satisfaction_token="c2lnbmVk.bWFj",
    )
    rendered = NotificationTemplates().render("ticket_resolved", "acme", context)
    page = "https://help.acme.test/api/v1/satisfaction/c2lnbmVk.bWFj"
    for rating, label in ((1, "Very poor"), (3, "OK"), (5, "Excellent")):
        assert f"{rating} - {label}: {page}?rating={rating}" in rendered.text
        assert f'href="{page}?rating={rating}"' in rendered.html
    assert page in rendered.sms
    assert "Reset the &lt;password&gt;" in rendered.html
    # Not a POST endpoint a click would answer 405 to.
    assert '/satisfaction"' not in rendered.html
    assert "/tickets/" not in rendered.sms


def test_without_a_signing_key_the_resolution_has_no_rating_links() -> None:
    rendered = NotificationTemplates().render(
        "ticket_resolved", "acme", render_context(event_for("ticket_resolved"))
    )
    assert "satisfaction" not in rendered.text + rendered.html + rendered.sms
    assert "has been resolved" in rendered.text


NAMED = ConfigTenantDirectory(
    {
        "tenants": {
            "acme": {
                "teams": [
                    {
                        "name": "Support",
                        "agents": [{"id": "agent-1", "name": "Grace Hopper"}],
                    }
                ]
            }
        }
    }
)
NAMED_TICKET = TicketContext(
    **{**TICKET.__dict__, "customer_name": "Ada Lovelace", "title": "Login"}
)


def named_context(event: dict, audience: str, person_id: str) -> dict:
    return template_context(
        event,
        NAMED_TICKET,
        audience=audience,
        person_id=person_id,
        public_url="https://help.acme.test",
        directory=NAMED,
    )


def test_people_are_named_by_name_without_role_suffixes() -> None:
    templates = NotificationTemplates()
    story = TicketStory()
    answer = story.commented("It works now", actor=customer_actor("cust-1"))
    to_agent = templates.render(
        "comment_added", "acme", named_context(answer, "agent", "agent-1")
    )
    assert to_agent.subject == "[#42] New comment from Ada Lovelace: Login"
    assert to_agent.text.startswith("Ada Lovelace commented on ticket #42")
    assert "cust-1" not in to_agent.text + to_agent.html
    assert "(customer)" not in to_agent.text + to_agent.html
    assert "(agent)" not in to_agent.text + to_agent.html

    reply = story.commented("Try again", actor=agent_actor("agent-1"))
    to_customer = templates.render(
        "comment_reply", "acme", named_context(reply, "customer", "cust-1")
    )
    assert to_customer.text.startswith("Hello Ada Lovelace,")
    assert "<p>Hello Ada Lovelace,</p>" in to_customer.html

    assigned = story.assigned("agent-1", "Support", actor=agent_actor("agent-1"))
    to_assignee = templates.render(
        "ticket_assigned", "acme", named_context(assigned, "agent", "agent-1")
    )
    assert "by Grace Hopper." in to_assignee.text


def test_an_unknown_person_is_named_by_address_then_by_id() -> None:
    story = TicketStory()
    answer = story.commented("Hello?", actor=customer_actor("cust-1"))
    by_address = template_context(
        answer,
        TICKET,
        audience="agent",
        person_id="agent-1",
        public_url="https://help.acme.test",
    )
    assert by_address["actor"]["name"] == "cust-1@example.test"
    nameless = TicketContext(**{**TICKET.__dict__, "customer_email": None})
    by_id = template_context(
        answer,
        nameless,
        audience="customer",
        person_id="cust-1",
        public_url="https://help.acme.test",
    )
    assert by_id["actor"]["name"] == "cust-1"
    assert by_id["recipient"]["name"] is None  # "Hello," then
    assigned = story.assigned(
        "agent-1", actor={"id": "auto-assignment", "role": "automation"}
    )
    automatic = NotificationTemplates().render(
        "ticket_assigned", "acme", named_context(assigned, "agent", "agent-1")
    )
    assert "assigned to you automatically." in automatic.text


def test_times_are_in_the_tenants_zone_and_locale() -> None:
    story = TicketStory()
    warning = story.next(
        "sla_warning", target="resolution", due_at="2026-12-07T08:30:00Z"
    )
    context = template_context(
        warning,
        TICKET,
        audience="agent",
        person_id="agent-1",
        public_url="https://help.acme.test",
        preferences=MailPreferences(locale="en_GB", timezone="Europe/Berlin"),
    )
    rendered = NotificationTemplates().render("sla_warning", "acme", context)
    assert "Due: Monday, 7 December 2026, 09:30 CET" in rendered.text
    assert "2026-12-07T08:30:00Z" not in rendered.text + rendered.html
    german = template_context(
        warning,
        TICKET,
        audience="agent",
        person_id="agent-1",
        public_url="https://help.acme.test",
        preferences=MailPreferences(locale="de", timezone="America/New_York"),
    )
    assert german["due_at"] == "Montag, 7. Dezember 2026, 03:30 EST"


def test_a_digest_lists_each_updates_own_words_once_greeted() -> None:
    templates = NotificationTemplates()
    story = TicketStory()
    reply = story.commented("Try <again>", actor=agent_actor("agent-1"))
    resolved = story.resolved("Replaced the fuser.")
    first = named_context(reply, "customer", "cust-1")
    latest = named_context(resolved, "customer", "cust-1")
    updates = [
        {
            "kind": kind,
            "subject": message.subject,
            "text_body": message.text_body,
            "html_body": message.html_body,
            "at": at,
        }
        for kind, message, at in (
            ("comment_reply", templates.render("comment_reply", "acme", first), "T1"),
            (
                "ticket_resolved",
                templates.render("ticket_resolved", "acme", latest),
                "T2",
            ),
        )
    ]
    digest = templates.render_digest("acme", latest, updates)
    assert digest.subject == "[#42] Resolved: Login"  # where it stands now
    assert digest.text.count("Hello Ada Lovelace,") == 1
    assert "There are 2 updates on your request #42" in digest.text
    reply_at = digest.text.index("--- 1. New reply: Login (T1) ---")
    resolved_at = digest.text.index("--- 2. Resolved: Login (T2) ---")
    assert reply_at < digest.text.index("Try <again>") < resolved_at
    assert resolved_at < digest.text.index("Replaced the fuser.")
    assert "Try &lt;again&gt;" in digest.html  # escaped once, not twice
    assert "&amp;lt;" not in digest.html
    assert digest.html.count("<p>Hello Ada Lovelace,</p>") == 1
    assert digest.html.count("<hr>") == 1  # one footer


def test_internal_notes_are_labelled_for_agents() -> None:
    event = event_for("comment_added")
    rendered = NotificationTemplates().render(
        "comment_added", "acme", render_context(event, "agent")
    )
    assert "internal note" in rendered.subject
    assert "Line one\nLine <two>" in rendered.text


def test_a_tenant_overrides_parts_and_keeps_the_rest() -> None:
    templates = NotificationTemplates(
        {
            "tenants": {
                "acme": {
                    "templates": {
                        "ticket_created": {
                            "subject": "ACME got #{{ ticket.number }}",
                            "html": "<p>{{ ticket.title }}</p>",
                        }
                    }
                }
            }
        }
    )
    ctx = render_context(event_for("ticket_created"))
    acme = templates.render("ticket_created", "acme", ctx)
    assert acme.subject == "ACME got #42"
    # Overrides are autoescaped too.
    assert (
        acme.html
        == "<p>Login &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co</p>\n"
    )
    assert "We received your request" in acme.text  # built-in part
    other = templates.render("ticket_created", "globex", ctx)
    assert other.subject.startswith("[#42] We received your request")


def test_tenant_templates_are_sandboxed_and_broken_ones_fall_back() -> None:
    templates = NotificationTemplates(
        {
            "tenants": {
                "evil": {
                    "templates": {
                        "ticket_created": {
                            # Reaching Python internals is refused by the sandbox.
                            "subject": "{{ ticket.__class__.__mro__ }}",
                            "text": "{{ ''.__class__.__subclasses__() }}",
                            "sms": "{% if %}",  # does not compile
                        }
                    }
                }
            }
        }
    )
    rendered = templates.render(
        "ticket_created", "evil", render_context(event_for("ticket_created"))
    )
    assert "mro" not in rendered.subject
    assert rendered.subject.startswith("[#42]")  # the built-in one
    assert "subclasses" not in rendered.text
    assert "We received your request" in rendered.text
    assert rendered.sms.startswith("We received your request #42")


def test_long_subjects_and_sms_are_cut() -> None:
    templates = NotificationTemplates(
        {
            "tenants": {
                "acme": {
                    "templates": {
                        "ticket_created": {
                            "subject": "{{ 'x' * 500 }}\nBcc: evil@example.test",
                            "sms": "{{ 'y' * 1000 }}",
                        }
                    }
                }
            }
        }
    )
    rendered = templates.render(
        "ticket_created", "acme", render_context(event_for("ticket_created"))
    )
    assert len(rendered.subject) == 200
    assert "\n" not in rendered.subject
    assert len(rendered.sms) == SMS_MAX


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="no templates"):
        NotificationTemplates().render("nope", "acme", {})


def merged_notice(kind: str, **fields: object) -> str:
    event = TicketStory().merged(OTHER_TICKET, into_number=41, **fields)
    rendered = NotificationTemplates().render(kind, "acme", render_context(event))
    return "\n".join((rendered.subject, rendered.text, rendered.html, rendered.sms))


def test_the_customer_learns_where_their_merged_request_goes_on() -> None:
    notice = merged_notice("request_merged")
    assert "combined with your request #41" in notice
    assert f"https://help.acme.test/api/v1/tickets/{OTHER_TICKET}" in notice


def test_a_merge_across_customers_never_names_the_other_request() -> None:
    notice = merged_notice("request_merged", cross_customer=True)
    assert "another request" in notice
    assert OTHER_TICKET not in notice
    assert "41" not in notice
    # An event stored before into_number: nothing to say where, either.
    old = TicketStory().merged(OTHER_TICKET)
    rendered = NotificationTemplates().render(
        "request_merged", "acme", render_context(old)
    )
    assert OTHER_TICKET not in rendered.text + rendered.html + rendered.sms


def test_agents_read_which_ticket_went_into_which() -> None:
    notice = merged_notice("ticket_merged", cross_customer=True)
    assert "merged ticket #42" in notice
    assert "into ticket #41" in notice
    assert "internal note" in notice


def test_a_reopen_says_who_reopened() -> None:
    story = TicketStory()
    by_customer = story.next(
        "ticket_reopened", actor=customer_actor(), reason="Still broken"
    )
    by_answer = story.next(
        "ticket_reopened",
        actor={"id": "customer-reply", "role": "automation", "kind": "automation"},
        reason="the customer answered",
    )
    templates = NotificationTemplates()
    first = templates.render("ticket_reopened", "acme", render_context(by_customer))
    second = templates.render("ticket_reopened", "acme", render_context(by_answer))
    assert first.text.startswith("The customer reopened ticket #42")
    assert "Still broken" in first.text
    assert second.text.startswith("The customer's answer reopened ticket #42")
    assert "[#42] Reopened by the customer" in second.subject

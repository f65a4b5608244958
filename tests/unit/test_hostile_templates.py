"""Tenant templates that raise, loop or grow fall back to the built-in ones.

Each hostile template is a ``subject`` override; the other parts are the
tenant's harmless ones, which must still be used. Every render must come
back within the time budget (plus a worker restart), with the failure
reported on the rendered notification.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dotmac.ticketing.consumers.notify.rendering import (
    NotificationTemplates,
    template_context,
)
from dotmac.ticketing.consumers.notify.rules import TicketContext
from dotmac.ticketing.consumers.notify.template_sandbox import (
    RenderBudget,
    TemplateSandbox,
)
from tests.notifications.events import TicketStory

BUDGET = RenderBudget(seconds=0.5, max_chars=20_000)
# A killed worker is replaced by a freshly spawned interpreter, which takes
# seconds on a loaded machine; a render that stalled would take minutes.
SLACK = 10.0

TICKET = TicketContext(
    ticket_id="3f0c6a8e-8d0f-4a53-9a55-2f4a1c0f6a11",
    tenant_id="acme",
    number=42,
    title="Printer on fire",
    customer_id="cust-1",
    customer_email="cust-1@example.test",
    assignee_id=None,
    assigned_team=None,
    status="open",
)

HOSTILE = {
    "overflow": "{{ range(10**7) }}",
    "zero-division": "{{ 1 / 0 }}",
    "type-error": "{{ 1 + 'a' }}",
    "undefined": "{{ nothing.at.all }}",
    "security": "{{ ''.__class__.__mro__ }}",
    "mutation": "{% set x = [] %}{{ x.append(1) }}",
    "recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "syntax": "{% if %}",
    "deep-nesting": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "memory": "{{ 'x' * 10**10 }}",
    "memory-filter": "{{ 'x'|center(10**10) }}",
    "huge-output": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "slow-loop": (
        "{% for i in range(100000) %}{% for j in range(100000) %}"
        "{% endfor %}{% endfor %}"
    ),
    "slow-filter": "{{ range(100000)|map('string')|join|length * 0 }}"
    + "{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}",
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[TemplateSandbox]:
    box = TemplateSandbox(BUDGET)
    box.render("warm", {}, html=False)  # the workers are spawned on first use
    yield box
    box.close()


def templates_with(subject: str, sandbox: TemplateSandbox) -> NotificationTemplates:
    return NotificationTemplates(
        {
            "tenants": {
                "acme": {
                    "templates": {
                        "ticket_created": {
                            "subject": subject,
                            "sms": "ACME: ticket {{ ticket.number }}",
                        }
                    }
                }
            }
        },
        sandbox=sandbox,
    )


def render(templates: NotificationTemplates):  # type: ignore[no-untyped-def]
    context = template_context(
        TicketStory().created,
        TICKET,
        audience="customer",
        person_id="cust-1",
        public_url="https://help.acme.test",
    )
    return templates.render("ticket_created", "acme", context)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_template_falls_back_and_is_reported(
    name: str, sandbox: TemplateSandbox
) -> None:
    templates = templates_with(HOSTILE[name], sandbox)
    started = time.monotonic()
    rendered = render(templates)
    elapsed = time.monotonic() - started

    assert elapsed < BUDGET.seconds + SLACK, elapsed
    assert rendered.subject.startswith("[#42] We received your request")
    assert rendered.sms == "ACME: ticket 42"  # the tenant's other part is kept
    assert [f.part for f in rendered.fallbacks] == ["subject"]
    assert rendered.fallbacks[0].error


def test_the_reasons_say_what_went_wrong(sandbox: TemplateSandbox) -> None:
    reasons = {
        name: render(templates_with(HOSTILE[name], sandbox)).fallbacks[0].error
        for name in ("overflow", "huge-output", "slow-loop", "memory")
    }
    assert reasons["overflow"].startswith("OverflowError")
    assert reasons["huge-output"] == f"output exceeds {BUDGET.max_chars} characters"
    assert reasons["slow-loop"] == f"did not finish within {BUDGET.seconds:g} s"
    assert reasons["memory"].startswith("MemoryError")


def test_the_sandbox_keeps_working_after_a_timeout(sandbox: TemplateSandbox) -> None:
    render(templates_with(HOSTILE["slow-loop"], sandbox))
    rendered = render(templates_with("ACME #{{ ticket.number }}", sandbox))
    assert rendered.subject == "ACME #42"
    assert rendered.fallbacks == ()

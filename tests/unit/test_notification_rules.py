"""Who is told what: the notifier's rules, without I/O."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dotmac.ticketing.consumers.notify.rules import (
    Agent,
    ConfigTenantDirectory,
    Notification,
    TicketContext,
    Webhook,
    decide_notifications,
    delivery_key,
    event_name,
)
from tests.notifications.events import TicketStory, agent_actor, customer_actor

AGENT2 = agent_actor("agent-2")

DIRECTORY = ConfigTenantDirectory(
    {
        "tenants": {
            "acme": {
                "teams": [
                    {
                        "name": "Support",
                        "agents": [
                            {"id": "agent-1", "email": "a1@acme.test"},
                            {"id": "agent-2", "phone": "+15550002"},
                        ],
                    },
                    {
                        "name": "Engineering",
                        "agents": [
                            {"id": "eng-1", "email": "e1@acme.test", "phone": "+1555"},
                            {"id": "eng-2"},
                            {"id": "agent-1", "phone": "+15550001"},
                            {
                                "id": "boss",
                                "email": "boss@acme.test",
                                "role": "supervisor",
                            },
                        ],
                    },
                ]
            },
            "other": {"teams": [{"name": "Support", "agents": [{"id": "x"}]}]},
        }
    }
)


def context(story: TicketStory, **changes: object) -> TicketContext:
    base = TicketContext(
        ticket_id=story.ticket_id,
        tenant_id=story.tenant_id,
        number=7,
        title="Printer on fire",
        customer_id=story.customer_id,
        customer_email="cust-1@example.test",
        assignee_id=None,
        assigned_team=None,
        status="new",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def deliveries(notes: list[Notification]) -> set[tuple[str, str, str]]:
    return {(n.kind, n.channel, n.recipient) for n in notes}


def test_directory_reads_the_tenant_settings_shape() -> None:
    assert DIRECTORY.agent("acme", "eng-1") == Agent("eng-1", "e1@acme.test", "+1555")
    # Listed in two teams: contact details merge, first listing first.
    assert DIRECTORY.agent("acme", "agent-1") == Agent(
        "agent-1", "a1@acme.test", "+15550001"
    )
    assert DIRECTORY.agent("acme", "nobody") is None
    assert DIRECTORY.agent("other", "agent-1") is None
    assert [a.id for a in DIRECTORY.team_members("acme", "support")] == [
        "agent-1",
        "agent-2",
    ]
    assert DIRECTORY.team_members("acme", "Unknown") == []
    assert ConfigTenantDirectory(None).team_members("acme", "Support") == []


def test_event_names_and_keys() -> None:
    assert event_name("ticketing.ticket.comment_added.v1") == "comment_added"
    assert event_name("ticketing.ticket.sla_breached.v2") == "sla_breached"
    assert event_name("something.else.v1") is None
    assert delivery_key("t:3", "email", "a@b") == "t:3|email|a@b"


def test_creation_acknowledges_the_customer_in_app_and_by_email() -> None:
    story = TicketStory()
    notes = decide_notifications(story.created, context(story), DIRECTORY)
    assert deliveries(notes) == {
        ("ticket_created", "in_app", "cust-1"),
        ("ticket_created", "email", "cust-1@example.test"),
    }
    assert {n.audience for n in notes} == {"customer"}
    assert notes[0].delivery_key(story.created["id"]).startswith(story.ticket_id)


def test_a_customer_without_an_address_gets_the_in_app_row_only() -> None:
    story = TicketStory(customer_email=None)
    notes = decide_notifications(
        story.created, context(story, customer_email=None), DIRECTORY
    )
    assert deliveries(notes) == {("ticket_created", "in_app", "cust-1")}


def test_assignment_tells_the_assignee_on_every_channel_they_have() -> None:
    story = TicketStory()
    event = story.assigned("eng-1", "Engineering", actor=agent_actor("lead"))
    ctx = context(story, assignee_id="eng-1", assigned_team="Engineering")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("ticket_assigned", "in_app", "eng-1"),
        ("ticket_assigned", "email", "e1@acme.test"),
        ("ticket_assigned", "sms", "+1555"),
    }


def test_an_agent_unknown_to_the_directory_gets_in_app_only() -> None:
    story = TicketStory()
    event = story.assigned("new-hire", actor=agent_actor("lead"))
    ctx = context(story, assignee_id="new-hire")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("ticket_assigned", "in_app", "new-hire"),
    }


def test_nobody_is_told_about_their_own_assignment() -> None:
    story = TicketStory()
    event = story.assigned("agent-1", actor=agent_actor("agent-1"))
    ctx = context(story, assignee_id="agent-1")
    assert decide_notifications(event, ctx, DIRECTORY) == []


def test_assignment_to_a_team_alone_tells_its_members() -> None:
    story = TicketStory()
    event = story.assigned(None, "Support", actor=agent_actor("lead"))
    ctx = context(story, assigned_team="Support")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("ticket_assigned", "in_app", "agent-1"),
        ("ticket_assigned", "email", "a1@acme.test"),
        ("ticket_assigned", "sms", "+15550001"),
        ("ticket_assigned", "in_app", "agent-2"),
        ("ticket_assigned", "sms", "+15550002"),
    }


def test_a_status_only_assignment_tells_nobody() -> None:
    story = TicketStory()
    event = story.assigned(
        "agent-1", "Support", previous_assignee_id="agent-1", previous_team="Support"
    )
    ctx = context(story, assignee_id="agent-1", assigned_team="Support")
    assert decide_notifications(event, ctx, DIRECTORY) == []


def test_a_customer_comment_goes_to_the_assignee() -> None:
    story = TicketStory()
    event = story.commented("Still burning", actor=customer_actor())
    ctx = context(story, assignee_id="agent-1", assigned_team="Support")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("comment_added", "in_app", "agent-1"),
        ("comment_added", "email", "a1@acme.test"),
        ("comment_added", "sms", "+15550001"),
    }


def test_a_customer_comment_goes_to_the_team_when_nobody_is_assigned() -> None:
    story = TicketStory()
    event = story.commented("Hello?", actor=customer_actor())
    ctx = context(story, assigned_team="Support")
    assert {n.recipient for n in decide_notifications(event, ctx, DIRECTORY)} == {
        "agent-1",
        "a1@acme.test",
        "+15550001",
        "agent-2",
        "+15550002",
    }
    # No assignee and no team: nobody to tell.
    assert decide_notifications(event, context(story), DIRECTORY) == []


def test_an_agent_reply_goes_to_the_customer_and_a_colleague_assignee() -> None:
    story = TicketStory()
    event = story.commented("Try turning it off", actor=agent_actor("agent-2"))
    ctx = context(story, assignee_id="agent-1")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("comment_reply", "in_app", "cust-1"),
        ("comment_reply", "email", "cust-1@example.test"),
        ("comment_added", "in_app", "agent-1"),
        ("comment_added", "email", "a1@acme.test"),
        ("comment_added", "sms", "+15550001"),
    }
    # The assignee's own reply: only the customer hears of it.
    own = story.commented("Done", actor=agent_actor("agent-1"))
    assert {n.audience for n in decide_notifications(own, ctx, DIRECTORY)} == {
        "customer"
    }


def test_a_workflows_acknowledgment_comment_is_not_sent_again() -> None:
    """The customer's one acknowledgment is the mail sent at creation."""
    story = TicketStory()
    workflow = {"id": "workflow:customer_support", "role": "automation"}
    ack = story.commented("We have received your request", actor=workflow)
    ack["data"]["acknowledgment"] = True
    webhook = Webhook(id="hook-1", url="https://hooks.acme.test/all")
    ctx = context(story, assignee_id="agent-1")
    assert deliveries(decide_notifications(ack, ctx, DIRECTORY, [webhook])) == {
        ("webhook", "webhook", "hook-1")  # systems still see every event
    }
    # Any other public comment of an automation reaches the customer.
    question = story.commented("Which version do you use?", actor=workflow)
    assert ("comment_reply", "email", "cust-1@example.test") in deliveries(
        decide_notifications(question, ctx, DIRECTORY)
    )


@pytest.mark.parametrize(
    "actor",
    [
        {"id": "workflow:customer_support", "role": "automation"},
        {"id": "workflow:billing", "role": "automation", "kind": "automation"},
        {"id": "sla", "role": "automation", "kind": "automation"},
        {"id": "system", "role": "system"},
    ],
)
def test_an_automations_comment_reaches_no_agent(actor: dict[str, str]) -> None:
    """No "New comment from workflow:…" for the desk's own bots."""
    story = TicketStory()
    ctx = context(story, assignee_id="agent-1", assigned_team="Support")
    public = story.commented("Which version do you use?", actor=actor)
    assert {
        (n.audience, n.kind) for n in decide_notifications(public, ctx, DIRECTORY)
    } == {("customer", "comment_reply")}
    note = story.commented("Looked the account up", internal=True, actor=actor)
    assert decide_notifications(note, ctx, DIRECTORY) == []


def test_internal_notes_never_reach_the_customer() -> None:
    story = TicketStory()
    note = story.commented("Customer is difficult", internal=True, actor=AGENT2)
    ctx = context(story, assignee_id="agent-1")
    notes = decide_notifications(note, ctx, DIRECTORY)
    assert notes
    assert all(n.audience == "agent" for n in notes)
    assert "cust-1" not in {n.recipient for n in notes}
    assert "cust-1@example.test" not in {n.recipient for n in notes}


def test_escalation_tells_the_target_team() -> None:
    story = TicketStory()
    event = story.escalated("Engineering")
    ctx = context(story, assigned_team="Engineering")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("ticket_escalated", "in_app", "eng-1"),
        ("ticket_escalated", "email", "e1@acme.test"),
        ("ticket_escalated", "sms", "+1555"),
        ("ticket_escalated", "in_app", "eng-2"),
        ("ticket_escalated", "in_app", "boss"),
        ("ticket_escalated", "email", "boss@acme.test"),
        # agent-1 is in Engineering too but escalated it: not told.
    }


def test_an_escalation_awaiting_approval_tells_the_supervisors() -> None:
    story = TicketStory()
    event = story.next(
        "escalation_requested",
        level=1,
        team="Engineering",
        rule="late",
        reason="rule late: 1 h since creation",
        actor={"id": "escalation-rules", "role": "automation", "kind": "automation"},
    )
    ctx = context(story, assigned_team="Support", assignee_id="agent-2")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("escalation_requested", "in_app", "boss"),
        ("escalation_requested", "email", "boss@acme.test"),
    }


def test_without_supervisors_the_target_team_hears_of_the_request() -> None:
    story = TicketStory()
    event = story.next(
        "escalation_requested",
        level=2,
        team="Support",
        rule="r",
        reason="why",
        actor={"id": "escalation-rules", "role": "automation", "kind": "automation"},
    )
    ctx = context(story, assigned_team="Support")
    assert {n.recipient for n in decide_notifications(event, ctx, DIRECTORY)} >= {
        "agent-1",
        "agent-2",
    }


def test_escalation_to_a_team_nobody_knows_is_skipped() -> None:
    story = TicketStory()
    event = story.escalated("Legal")
    assert decide_notifications(event, context(story), DIRECTORY) == []


@pytest.mark.parametrize("name", ["sla_warning", "sla_breached"])
def test_sla_notices_go_to_the_assignee(name: str) -> None:
    story = TicketStory()
    event = story.next(
        name, actor={"id": "timers", "role": "automation", "kind": "automation"}
    )
    ctx = context(story, assignee_id="agent-2", assigned_team="Support")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        (name, "in_app", "agent-2"),
        (name, "sms", "+15550002"),
    }
    # Unassigned: the team hears of it.
    unassigned = decide_notifications(
        event, context(story, assigned_team="Support"), DIRECTORY
    )
    assert {n.person_id for n in unassigned} == {"agent-1", "agent-2"}


def test_resolution_tells_the_customer() -> None:
    story = TicketStory()
    event = story.resolved()
    assert deliveries(decide_notifications(event, context(story), DIRECTORY)) == {
        ("ticket_resolved", "in_app", "cust-1"),
        ("ticket_resolved", "email", "cust-1@example.test"),
    }


def test_events_without_a_rule_tell_nobody() -> None:
    story = TicketStory()
    event = story.next("priority_changed", priority="urgent")
    assert decide_notifications(event, context(story), DIRECTORY) == []


def test_webhooks_get_every_event_they_subscribe_to() -> None:
    story = TicketStory()
    all_events = Webhook(id="w-all", url="https://hooks.test/all")
    comments = Webhook(
        id="w-comments",
        url="https://hooks.test/c",
        event_types=("ticketing.ticket.comment_added.v1",),
    )
    hooks = [all_events, comments]
    priority = story.next("priority_changed", priority="urgent")
    assert deliveries(
        decide_notifications(priority, context(story), DIRECTORY, hooks)
    ) == {("webhook", "webhook", "w-all")}
    comment = story.commented("hi", actor=customer_actor())
    got = decide_notifications(comment, context(story), DIRECTORY, hooks)
    assert {n.recipient for n in got if n.channel == "webhook"} == {
        "w-all",
        "w-comments",
    }
    # Without the ticket (never saw it created) webhooks still fire.
    assert len(decide_notifications(comment, None, DIRECTORY, hooks)) == 2


def test_one_address_is_one_delivery() -> None:
    story = TicketStory()
    event = story.escalated("Engineering", assignee="eng-1")
    notes = decide_notifications(event, context(story), DIRECTORY)
    keys = [(n.channel, n.recipient) for n in notes]
    assert len(keys) == len(set(keys))


ALERTS = ConfigTenantDirectory(
    {
        "tenants": {
            "acme": {
                "teams": [
                    {
                        "name": "Engineering",
                        "agents": [
                            {"id": "eng-1", "email": "e1@acme.test"},
                            {
                                "id": "boss",
                                "email": "boss@acme.test",
                                "role": "supervisor",
                            },
                        ],
                    }
                ],
                "sla_alerts": {
                    "admins": [{"id": "admin-1", "email": "admin@acme.test"}]
                },
            },
            "quiet": {
                "teams": [
                    {
                        "name": "Engineering",
                        "agents": [
                            {"id": "boss", "role": "supervisor"},
                            {"id": "eng-1"},
                        ],
                    }
                ],
                "sla_alerts": {"supervisors_on_breach": False},
            },
        }
    }
)
TIMERS = {"id": "timers", "role": "automation", "kind": "automation"}


def told(name: str, story: TicketStory, **ticket: object) -> set[str]:
    event = story.next(name, actor=TIMERS)
    return {
        n.person_id
        for n in decide_notifications(event, context(story, **ticket), ALERTS)
    }


def test_a_breach_also_reaches_the_teams_supervisors() -> None:
    story = TicketStory()
    assigned = {"assignee_id": "eng-1", "assigned_team": "Engineering"}
    assert told("sla_warning", story, **assigned) == {"eng-1"}
    assert told("sla_breached", story, **assigned) == {"eng-1", "boss"}
    # Unassigned: the team (its queue), and on a breach its supervisors once.
    assert told("sla_breached", story, assigned_team="Engineering") == {"eng-1", "boss"}


def test_a_ticket_without_a_team_reaches_the_tenants_admins() -> None:
    story = TicketStory()
    assert told("sla_warning", story) == {"admin-1"}
    assert told("sla_breached", story) == {"admin-1"}
    # An assignee without a team: they, and the admins who own the desk.
    assert told("sla_breached", story, assignee_id="eng-1") == {"eng-1", "admin-1"}


def test_a_tenant_can_keep_supervisors_out_of_breaches() -> None:
    story = TicketStory(tenant_id="quiet")
    ticket = {"assignee_id": "eng-1", "assigned_team": "Engineering"}
    assert told("sla_breached", story, **ticket) == {"eng-1"}


# -- merges and reopens ------------------------------------------------------------


def test_a_merge_tells_the_customer_and_both_assignees() -> None:
    story = TicketStory()
    event = story.merged(
        "target-id", into_number=3, into_assignee_id="eng-1", actor=AGENT2
    )
    ctx = context(story, assignee_id="agent-1", status="closed")
    assert deliveries(decide_notifications(event, ctx, DIRECTORY)) == {
        ("request_merged", "in_app", "cust-1"),
        ("request_merged", "email", "cust-1@example.test"),
        # The target's assignee, and the merged ticket's own.
        ("ticket_merged", "in_app", "eng-1"),
        ("ticket_merged", "email", "e1@acme.test"),
        ("ticket_merged", "sms", "+1555"),
        ("ticket_merged", "in_app", "agent-1"),
        ("ticket_merged", "email", "a1@acme.test"),
        ("ticket_merged", "sms", "+15550001"),
    }


def test_a_merge_tells_one_assignee_of_both_tickets_once_and_never_the_merger() -> None:
    story = TicketStory()
    same = story.merged("target-id", into_number=3, into_assignee_id="agent-1")
    ctx = context(story, assignee_id="agent-1")
    people = [(n.kind, n.person_id) for n in decide_notifications(same, ctx, DIRECTORY)]
    # agent-1 merged it: only the customer hears of it.
    assert {p for _, p in people} == {"cust-1"}
    by_colleague = story.merged(
        "target-id", into_number=3, into_assignee_id="agent-1", actor=AGENT2
    )
    notes = decide_notifications(by_colleague, ctx, DIRECTORY)
    assert [n.channel for n in notes if n.person_id == "agent-1"] == [
        "in_app",
        "email",
        "sms",
    ]


def test_the_comments_a_merge_carried_are_not_sent_again() -> None:
    story = TicketStory()
    merge = {"id": "ticket-merge", "role": "automation", "kind": "automation"}
    carried = story.commented('Merged from request #3 "Printer"', actor=merge)
    carried["data"]["merged_from"] = "source-id"
    ctx = context(story, assignee_id="agent-1")
    assert decide_notifications(carried, ctx, DIRECTORY) == []


def test_a_customers_reopen_tells_the_assignee() -> None:
    story = TicketStory()
    reopened = story.next(
        "ticket_reopened", actor=customer_actor(), reason="Still broken"
    )
    ctx = context(story, assignee_id="agent-1", status="open")
    assert deliveries(decide_notifications(reopened, ctx, DIRECTORY)) == {
        ("ticket_reopened", "in_app", "agent-1"),
        ("ticket_reopened", "email", "a1@acme.test"),
        ("ticket_reopened", "sms", "+15550001"),
    }
    # The customer's answer on the resolved ticket reopened it (automation).
    answered = story.next(
        "ticket_reopened",
        actor={"id": "customer-reply", "role": "automation", "kind": "automation"},
        reason="the customer answered",
    )
    assert {n.person_id for n in decide_notifications(answered, ctx, DIRECTORY)} == {
        "agent-1"
    }


def test_a_reopen_without_an_assignee_tells_the_team_and_never_the_reopener() -> None:
    story = TicketStory()
    reopened = story.next("ticket_reopened", actor=customer_actor(), reason="")
    team = decide_notifications(
        reopened, context(story, assigned_team="Support"), DIRECTORY
    )
    assert {n.person_id for n in team} == {"agent-1", "agent-2"}
    own = story.next("ticket_reopened", actor=agent_actor("agent-1"), reason="Oops")
    ctx = context(story, assignee_id="agent-1")
    assert decide_notifications(own, ctx, DIRECTORY) == []

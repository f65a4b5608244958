"""The built-in workflows, step by step, against scripted other systems.

Each step runs with a :class:`WorkflowContext` built here and an in-memory
:class:`Integrations` that records the calls and answers as scripted (or
raises like the HTTP hooks do). The HTTP path and the runtime that records
the results are tested elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dotmac.ticketing.domain.builtin_workflows import (
    ACCOUNT_LOOKUP,
    APPLY_ADJUSTMENT,
    BILLING_HISTORY,
    BUILTIN_WORKFLOWS,
    DIAGNOSTICS,
    BillingWorkflow,
    CustomerSupportWorkflow,
    TechnicalSupportWorkflow,
)
from dotmac.ticketing.domain.diagnostics import DEFAULT_QUESTIONS, DEVICE, OUTAGE
from dotmac.ticketing.domain.workflow import (
    IntegrationNotConfigured,
    TicketAction,
    TicketWorkflow,
    WorkflowContext,
    WorkflowResult,
    following_step,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# The technical-support tickets here are about a VPN client: a device problem.
QUESTION = DEFAULT_QUESTIONS[DEVICE]

# -- stand-ins and builders -------------------------------------------------------


class HookFailed(Exception):
    """Like consumers.workflows.integrations.IntegrationError: says whether to retry."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Call:
    name: str
    payload: dict[str, Any]
    idempotency_key: str


class ScriptedIntegrations:
    """Answers each hook as scripted; an unscripted hook is not configured."""

    def __init__(self, **answers: Mapping[str, Any] | Exception) -> None:
        self.answers = answers
        self.calls: list[Call] = []

    async def call(
        self, name: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        self.calls.append(Call(name, dict(payload), idempotency_key))
        answer = self.answers.get(name)
        if answer is None:
            raise IntegrationNotConfigured(name)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


def ticket(**changes: Any) -> dict[str, Any]:
    """The plain dict the runtime gives a step, with ``changes``."""
    base: dict[str, Any] = {
        "id": "t-1",
        "number": 42,
        "title": "VPN drops every ten minutes",
        "description": "Since yesterday the VPN disconnects.",
        "category": "general",
        "priority": "normal",
        "channel": "web",
        "status": "new",
        "tags": [],
        "custom_fields": {},
        "customer_id": "cust-1",
        "customer_email": "ann@example.com",
        "assignee_id": None,
        "assigned_team": None,
        "escalation_level": 0,
        "reopen_count": 0,
        "created_at": T0,
        "resolved_at": None,
        "first_response_at": None,
        "workflow_type": "customer_support",
        "category_set_by_person": False,
        "sla": {},
        "comments": [],
    }
    base.update(changes)
    return base


def comment(
    comment_id: str,
    body: str,
    role: str = "customer",
    *,
    internal: bool = False,
    at: datetime = T0,
    solution: bool = False,
) -> dict[str, Any]:
    return {
        "id": comment_id,
        "body": body,
        "internal": internal,
        "author_id": f"{role}-1",
        "author_role": role,
        "created_at": at,
        "solution": solution,
    }


def context(
    tk: Mapping[str, Any],
    *,
    options: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    results: Mapping[str, Mapping[str, Any]] | None = None,
    integrations: ScriptedIntegrations | None = None,
    now: datetime = T0,
    visit: int = 1,
) -> WorkflowContext:
    document = dict(settings or {})
    if options is not None:
        document["workflows"] = {"options": {tk["workflow_type"]: dict(options)}}
    return WorkflowContext(
        ticket=tk,
        settings=document,
        results=results or {},
        attempt=1,
        now=now,
        integrations=integrations or ScriptedIntegrations(),
        visit=visit,
    )


def run(workflow: TicketWorkflow, step: str, ctx: WorkflowContext) -> WorkflowResult:
    result = asyncio.run(workflow.bind(ctx).execute_step(step))
    assert result.step_name == step
    json.dumps(result.data)  # the service stores it in an event: JSON only
    json.dumps([a.as_dict() for a in result.actions])
    return result


def kinds(result: WorkflowResult) -> list[str]:
    return [action.kind for action in result.actions]


def only_comment(result: WorkflowResult) -> TicketAction:
    (action,) = result.actions
    assert action.kind == "comment"
    return action


def drive(
    workflow: TicketWorkflow, make: Any
) -> tuple[list[str], dict[str, dict[str, Any]], WorkflowResult]:
    """Run steps in order (as the runtime would) until one waits or none is left.

    ``make(results)`` builds the context of each step from the results so far.
    """
    results: dict[str, dict[str, Any]] = {}
    path: list[str] = []
    step: str | None = workflow.step_names[0]
    result = None
    while step is not None:
        result = run(workflow, step, make(results))
        path.append(step)
        assert result.success, result.message
        if result.requires_action:
            break
        results[step] = dict(result.data)
        step, _ = following_step(workflow.step_names, step, result)
    assert result is not None
    return path, results, result


# -- the definitions --------------------------------------------------------------


def test_each_builtin_is_constructible_and_runs_every_step_it_names() -> None:
    assert [w().workflow_type for w in BUILTIN_WORKFLOWS] == [
        "customer_support",
        "technical_support",
        "billing",
    ]
    for workflow_class in BUILTIN_WORKFLOWS:
        workflow = workflow_class()
        for step in workflow.steps:
            assert callable(getattr(workflow, f"step_{step.name}", None)), step.name
            assert step.description, step.name


def test_the_hook_names_are_the_integrations_modules() -> None:
    from dotmac.ticketing.consumers.workflows import integrations

    assert (ACCOUNT_LOOKUP, BILLING_HISTORY, APPLY_ADJUSTMENT, DIAGNOSTICS) == (
        integrations.ACCOUNT_LOOKUP,
        integrations.BILLING_HISTORY,
        integrations.APPLY_ADJUSTMENT,
        integrations.DIAGNOSTICS,
    )


# == customer support ================================================================

support = CustomerSupportWorkflow


def test_a_complete_ticket_validates_without_asking() -> None:
    result = run(support(), "validate_ticket", context(ticket()))
    assert result.success and not result.requires_action
    assert result.data["valid"] is True and result.data["missing"] == []
    assert result.actions == ()


def test_an_empty_description_asks_the_customer_but_the_step_succeeds() -> None:
    result = run(support(), "validate_ticket", context(ticket(description="  ")))
    assert result.success and not result.requires_action
    assert result.data["missing"] == ["description"]
    assert result.data["asked_customer_for_details"] is True
    ask = only_comment(result)
    assert ask.fields["internal"] is False
    assert "describe" in ask.fields["body"] or "description" in ask.fields["body"]


@pytest.mark.parametrize(
    ("title", "why"),
    [("Help!", "does not say"), ("hi", "shorter than 5"), ("?!?!?!", "no words")],
)
def test_a_title_that_names_no_problem_is_reported(title: str, why: str) -> None:
    result = run(support(), "validate_ticket", context(ticket(title=title)))
    assert result.data["missing"] == ["title"]
    assert why in result.data["problems"]["title"]
    assert result.actions == ()  # the description says what is wrong


def test_a_ticket_without_contact_is_reported() -> None:
    tk = ticket(customer_id=None, customer_email=None)
    result = run(support(), "validate_ticket", context(tk))
    assert result.data["missing"] == ["contact"]
    only_email = ticket(customer_id=None)
    assert run(support(), "validate_ticket", context(only_email)).data["valid"]


def test_the_title_length_is_an_option() -> None:
    tk = ticket(title="Login broken")
    result = run(
        support(), "validate_ticket", context(tk, options={"min_title_length": 20})
    )
    assert "shorter than 20" in result.data["problems"]["title"]


RULES = {
    "categorization_rules": [
        {
            "name": "billing_words",
            "category": "billing",
            "keywords": ["invoice", "refund"],
            "confidence": 0.9,
        },
        {"name": "tech", "category": "technical_support", "keywords": ["vpn"]},
    ]
}


def test_rules_categorize_with_their_confidence_and_explain_why() -> None:
    tk = ticket(title="Refund for my last invoice", description="charged twice")
    result = run(support(), "auto_categorize", context(tk, settings=RULES))
    assert result.actions == (
        TicketAction("categorize", {"category": "billing", "confidence": 0.9}),
    )
    assert result.data["categorized"] is True
    assert result.data["previous_category"] == "general"
    assert result.data["match"]["rule"] == "billing_words"
    assert "refund" in result.data["explanation"]
    assert "billing_words" in result.message


def test_a_category_a_person_chose_is_kept() -> None:
    tk = ticket(title="Refund please", category_set_by_person=True)
    result = run(support(), "auto_categorize", context(tk, settings=RULES))
    assert result.actions == ()
    assert result.data["decided_by"] == "person"
    assert "a person" in result.message


def test_no_matching_rule_changes_nothing_and_says_so() -> None:
    tk = ticket(title="Question about opening hours", description="when?")
    result = run(support(), "auto_categorize", context(tk, settings=RULES))
    assert result.actions == ()
    assert result.data["categorized"] is False
    assert "no categorisation rule matched" in result.data["why"]
    no_rules = run(support(), "auto_categorize", context(tk))
    assert no_rules.data["categorized"] is False


def test_rules_that_agree_with_the_category_change_nothing() -> None:
    tk = ticket(category="technical_support")
    result = run(support(), "auto_categorize", context(tk, settings=RULES))
    assert result.actions == ()
    assert result.data["match"]["rule"] == "tech"
    assert "agree" in result.message


def test_an_unassigned_ticket_is_routed_by_the_assignment_rules() -> None:
    result = run(support(), "assign_team", context(ticket()))
    assert result.actions == (TicketAction("assign", {}),)  # no team: the rules pick
    assert result.data["requested"] is True


@pytest.mark.parametrize(
    "holder", [{"assigned_team": "Billing"}, {"assignee_id": "agent-7"}]
)
def test_an_assigned_ticket_is_left_where_it_is(holder: dict[str, str]) -> None:
    result = run(support(), "assign_team", context(ticket(**holder)))
    assert result.actions == ()
    assert result.data["requested"] is False
    assert "already" in result.message


FIRST_DUE = T0 + timedelta(hours=1)
SLA = {
    "first_response": {"due_at": FIRST_DUE, "state": "running"},
    "resolution": {"due_at": T0 + timedelta(days=3), "state": "running"},
}


def test_the_acknowledgment_names_the_ticket_and_when_to_expect_an_answer() -> None:
    result = run(support(), "send_acknowledgment", context(ticket(sla=SLA)))
    ack = only_comment(result)
    assert ack.fields["internal"] is False
    # The customer had the acknowledgment e-mail already: not mailed again.
    assert ack.fields["acknowledgment"] is True
    assert "#42" in ack.fields["body"]
    assert "VPN drops every ten minutes" in ack.fields["body"]
    assert "2026-03-02 10:00 UTC" in ack.fields["body"]
    assert result.data["first_response_due_at"] == FIRST_DUE.isoformat()


def test_a_due_time_in_iso_text_is_read_too() -> None:
    sla = {"first_response": {"due_at": FIRST_DUE.isoformat(), "state": "warning"}}
    result = run(support(), "send_acknowledgment", context(ticket(sla=sla)))
    assert "2026-03-02 10:00 UTC" in only_comment(result).fields["body"]


@pytest.mark.parametrize(
    "changes",
    [
        {"sla": {}},
        {"sla": {"first_response": {"due_at": None, "state": "paused"}}},
        {"sla": {"first_response": {"due_at": FIRST_DUE, "state": "met"}}},
        {"sla": SLA, "first_response_at": T0},
    ],
)
def test_without_a_running_first_response_clock_no_time_is_promised(
    changes: dict[str, Any],
) -> None:
    result = run(support(), "send_acknowledgment", context(ticket(**changes)))
    body = only_comment(result).fields["body"]
    assert "as soon as possible" in body and "UTC" not in body
    assert result.data["first_response_due_at"] is None


def test_sla_monitoring_records_the_due_time_of_each_target() -> None:
    result = run(support(), "start_sla_monitoring", context(ticket(sla=SLA)))
    assert result.data == {
        "monitored": True,
        "targets": {
            "first_response": {"due_at": FIRST_DUE.isoformat(), "state": "running"},
            "resolution": {
                "due_at": (T0 + timedelta(days=3)).isoformat(),
                "state": "running",
            },
        },
    }
    assert "first_response due 2026-03-02 10:00 UTC" in result.message
    none = run(support(), "start_sla_monitoring", context(ticket()))
    assert none.data == {"monitored": False, "targets": {}}
    assert none.message == "no SLA clock runs for this ticket"


def test_the_customer_support_workflow_runs_through() -> None:
    tk = ticket(title="Refund for invoice 7", sla=SLA)
    path, results, last = drive(
        support(), lambda r: context(tk, settings=RULES, results=r)
    )
    assert path == support().step_names
    assert results["auto_categorize"]["category"] == "billing"
    assert kinds(last) == []


# == technical support =============================================================

technical = TechnicalSupportWorkflow


def tech(**changes: Any) -> dict[str, Any]:
    return ticket(
        **{"workflow_type": "technical_support", "description": "VPN broken", **changes}
    )


ASKED = comment("c-q", QUESTION, "automation")


def test_diagnostics_are_asked_for_and_the_step_waits() -> None:
    result = run(technical(), "collect_diagnostics", context(tech()))
    assert result.success and result.requires_action
    assert result.message == "waiting for the customer's diagnostic information"
    assert result.actions == (
        TicketAction("comment", {"body": QUESTION, "internal": False}),
    )


def test_a_run_after_the_question_waits_alike_without_asking_again() -> None:
    first = run(technical(), "collect_diagnostics", context(tech()))
    again = run(technical(), "collect_diagnostics", context(tech(comments=[ASKED])))
    assert again.requires_action and again.actions == ()
    # The same wait: the service records no new one and applies nothing.
    assert (again.message, again.data, again.wake_at) == (
        first.message,
        first.data,
        first.wake_at,
    )
    # Only our own question counts as asked, not another automation's comment.
    ack = comment("c-a", "We received your request", "automation")
    other = run(technical(), "collect_diagnostics", context(tech(comments=[ack])))
    assert other.actions == first.actions
    agent_note = comment("c-n", "checking", "agent", internal=True)
    still = run(
        technical(), "collect_diagnostics", context(tech(comments=[ASKED, agent_note]))
    )
    assert still.requires_action


def test_the_customers_answer_completes_the_diagnostics() -> None:
    comments = [
        ASKED,
        comment("c-1", "Windows 11, client 5.2"),
        comment("c-2", "Error 809 after 10 min"),
    ]
    result = run(technical(), "collect_diagnostics", context(tech(comments=comments)))
    assert result.success and not result.requires_action
    assert result.data["source"] == "customer_reply"
    assert result.data["question_comment_id"] == "c-q"
    assert result.data["comment_ids"] == ["c-1", "c-2"]
    assert (
        result.data["diagnostics"] == "Windows 11, client 5.2\n\nError 809 after 10 min"
    )
    assert result.data["last_comment_id"] == "c-2"


def test_the_question_is_an_option() -> None:
    options = {"diagnostics_question": "Which router model do you have?"}
    asked = run(technical(), "collect_diagnostics", context(tech(), options=options))
    assert only_comment(asked).fields["body"] == "Which router model do you have?"
    posted = comment("c-q", "Which router model do you have?", "automation")
    reply = comment("c-1", "FritzBox 7590")
    tk = tech(comments=[posted, reply])
    done = run(technical(), "collect_diagnostics", context(tk, options=options))
    assert done.data["diagnostics"] == "FritzBox 7590"


def test_a_site_down_ticket_is_asked_about_the_outage_not_its_device() -> None:
    down = tech(
        title="Production site down",
        description="Our shop returns 503 for every visitor.",
        priority="critical",
    )
    asked = run(technical(), "collect_diagnostics", context(down))
    body = only_comment(asked).fields["body"]
    assert body == DEFAULT_QUESTIONS[OUTAGE]
    assert "firmware" not in body and "affected" in body
    assert asked.data == {"question": body, "kind": OUTAGE}
    # Asked, then the priority drops: the same wait, no second question.
    posted = comment("c-q", body, "automation")
    calmer = down | {"priority": "high", "comments": [posted]}
    again = run(technical(), "collect_diagnostics", context(calmer))
    assert again.actions == () and again.data == asked.data


def test_each_kind_of_question_is_worded_by_the_tenant() -> None:
    options = {
        "diagnostics_questions": {"outage": "Which stores are closed?"},
        "diagnostics_question": "Anything else?",
    }
    down = tech(title="All tills offline", priority="high")
    asked = run(technical(), "collect_diagnostics", context(down, options=options))
    assert only_comment(asked).fields["body"] == "Which stores are closed?"
    # The older single question words the kinds the new option leaves out.
    device = run(technical(), "collect_diagnostics", context(tech(), options=options))
    assert only_comment(device).fields["body"] == "Anything else?"


def test_priorities_and_categories_the_tenant_skips_are_not_asked() -> None:
    options = {
        "skip_diagnostics_for": {"priorities": ["critical"], "categories": ["account"]}
    }
    for tk, why in (
        (tech(priority="critical"), "priority critical"),
        (tech(category="account"), "category account"),
    ):
        result = run(technical(), "collect_diagnostics", context(tk, options=options))
        assert not result.requires_action and result.actions == ()
        assert result.message == f"not asked: the tenant skips the question for {why}"
        assert result.data["source"] == "skipped"
        assert result.data["diagnostics"] == "VPN broken"
    # Asked before the ticket became critical: nobody waits for the answer.
    raised = tech(priority="critical", comments=[ASKED])
    result = run(technical(), "collect_diagnostics", context(raised, options=options))
    assert not result.requires_action and result.data["asked"] is True
    assert result.message == (
        "no longer waited for: the tenant skips the question for priority critical"
    )
    asked = run(technical(), "collect_diagnostics", context(tech(), options=options))
    assert asked.requires_action


def test_details_already_given_are_not_asked_for() -> None:
    long = "The VPN client 5.2 on Windows 11 drops with error 809 every ten minutes."
    described = run(
        technical(),
        "collect_diagnostics",
        context(tech() | {"description": long}, options={"diagnostics_min_length": 40}),
    )
    assert not described.requires_action and described.actions == ()
    assert described.data["source"] == "description"
    assert described.data["diagnostics"] == long
    assert "characters" in described.message
    commented = run(
        technical(),
        "collect_diagnostics",
        context(tech(comments=[comment("c-1", "It is error 809")])),
    )
    assert not commented.requires_action and commented.actions == ()
    assert commented.data["source"] == "customer_comments"
    assert commented.data["diagnostics"] == "It is error 809"


DIAG_RESULT = {"diagnostics": "error 809", "last_comment_id": "c-1"}


def test_analysis_calls_the_diagnostics_hook() -> None:
    hooks = ScriptedIntegrations(
        diagnostics={"complex": True, "summary": "MTU mismatch on the tunnel"}
    )
    ctx = context(
        tech(), results={"collect_diagnostics": DIAG_RESULT}, integrations=hooks
    )
    result = run(technical(), "analyze", ctx)
    (call,) = hooks.calls
    assert call.name == DIAGNOSTICS
    assert call.idempotency_key == "t-1:analyze:1"
    assert call.payload["diagnostics"] == "error 809"
    assert call.payload["ticket_id"] == "t-1"
    assert call.payload["title"] == "VPN drops every ten minutes"
    assert result.data["complex"] is True
    assert result.data["summary"] == "MTU mismatch on the tunnel"
    assert result.data["analysis"] == {
        "complex": True,
        "summary": "MTU mismatch on the tunnel",
    }


def test_an_analysis_that_does_not_say_is_judged_by_priority() -> None:
    hooks = ScriptedIntegrations(diagnostics={"summary": "unclear"})
    result = run(
        technical(), "analyze", context(tech(priority="urgent"), integrations=hooks)
    )
    assert result.data["complex"] is True
    assert "did not say" in result.data["why"]


def test_without_a_diagnostics_hook_a_person_judges_the_problem() -> None:
    result = run(technical(), "analyze", context(tech(priority="critical")))
    assert result.success and result.requires_action
    assert result.actions == ()
    assert "no integration 'diagnostics' is configured" in result.message
    assert "judge whether the problem is complex" in result.message
    assert "POST /tickets/{id}/workflow/steps/analyze/complete" in result.message
    assert "configure 'diagnostics' in the settings section 'integrations'" in (
        result.message
    )
    # The priority suggests the answer; a person gives it.
    assert result.data["complete_with"] == {
        "complex": True,
        "summary": "what the problem is",
    }


def test_what_a_person_judged_is_what_the_escalation_reads() -> None:
    judged = {"analyze": {"complex": True, "summary": "TLS certificate expired"}}
    result = run(
        technical(),
        "escalate_complex",
        context(tech(status="open"), results=judged, settings=ESCALATION),
    )
    assert result.data["escalated"] is True
    assert result.data["reason"] == "complex problem: TLS certificate expired"


@pytest.mark.parametrize(
    "error",
    [
        HookFailed("integration 'diagnostics' is down: refused", retryable=True),
        HookFailed("integration 'diagnostics' refused the request", retryable=False),
        RuntimeError("something else"),
        # Retryable: a passing failure, whatever its words.
        HookFailed("no integration answer in time", retryable=True),
    ],
)
def test_a_failing_diagnostics_system_fails_the_step(error: Exception) -> None:
    hooks = ScriptedIntegrations(diagnostics=error)
    with pytest.raises(type(error)):  # the runtime records WorkflowStepFailed
        run(technical(), "analyze", context(tech(), integrations=hooks))


ESCALATION = {
    "escalation_rules": [
        {
            "name": "first_line",
            "conditions": {},
            "level": 1,
            "escalation_time_hours": 4,
            "escalate_to_team": "Tier 2",
        },
        {
            "name": "critical_vpn",
            "conditions": {"priority": ["critical"], "text": {"contains": ["vpn"]}},
            "level": 2,
            "escalation_time_hours": 1,
            "escalate_to_team": "Network Engineering",
        },
    ]
}
COMPLEX = {"analyze": {"complex": True, "summary": "MTU mismatch"}}


def test_a_complex_problem_goes_to_the_team_of_the_matching_rule() -> None:
    ctx = context(tech(priority="critical"), settings=ESCALATION, results=COMPLEX)
    result = run(technical(), "escalate_complex", ctx)
    assert result.actions == (
        TicketAction(
            "escalate",
            {
                "reason": "complex problem: MTU mismatch",
                "team": "Tier 2",
                "rule": "first_line",
                "level": 1,
            },
        ),
    )
    assert result.data["rule"] == "first_line"
    # Already at level 1: the first rule has had its say, the next one matches.
    at_one = tech(priority="critical", escalation_level=1)
    ctx = context(at_one, settings=ESCALATION, results=COMPLEX)
    result = run(technical(), "escalate_complex", ctx)
    assert result.actions[0].fields["team"] == "Network Engineering"
    assert result.actions[0].fields["level"] == 2
    assert result.data["rule"] == "critical_vpn"


def test_without_a_matching_rule_the_option_team_or_the_current_team_takes_it() -> None:
    at_one = tech(escalation_level=1)  # critical_vpn does not match a normal one
    ctx = context(
        at_one,
        settings=ESCALATION,
        results=COMPLEX,
        options={"escalation_team": "Engineering"},
    )
    result = run(technical(), "escalate_complex", ctx)
    assert result.actions[0].fields["team"] == "Engineering"
    assert result.data["rule"] is None


def test_an_escalation_that_would_change_nothing_is_not_made() -> None:
    # No rule and no option name a team: the current team keeps it.
    held = tech(status="open", assigned_team="Support", assignee_id="ann")
    plain = run(technical(), "escalate_complex", context(held, results=COMPLEX))
    assert plain.actions == ()
    assert plain.message == (
        "not escalated: kept by the current team, team Support (agent ann)"
        " (no escalation rule or option names a team)"
    )
    assert plain.data["escalated"] is False
    assert plain.data["kept_by"] == "team Support (agent ann)"
    assert "would change nothing" in plain.data["why"]
    # The rule's or the option's team holds the ticket already: alike.
    in_tier_2 = tech(status="open", assigned_team="Tier 2")
    ruled = run(
        technical(),
        "escalate_complex",
        context(in_tier_2, settings=ESCALATION, results=COMPLEX),
    )
    assert ruled.actions == () and ruled.data["rule"] == "first_line"
    assert ruled.data["kept_by"] == "team Tier 2"
    in_eng = tech(status="open", assigned_team="Engineering")
    opted = run(
        technical(),
        "escalate_complex",
        context(in_eng, options={"escalation_team": "Engineering"}, results=COMPLEX),
    )
    assert opted.actions == () and opted.data["escalated"] is False
    # Nobody holds it and nobody is named: nothing to hand over either.
    nobody = run(technical(), "escalate_complex", context(tech(), results=COMPLEX))
    assert nobody.actions == () and "nobody" in nobody.data["kept_by"]


def test_a_simple_problem_or_a_finished_ticket_is_not_escalated() -> None:
    simple = {"analyze": {"complex": False}}
    result = run(technical(), "escalate_complex", context(tech(), results=simple))
    assert result.actions == () and result.data["escalated"] is False
    resolved = tech(status="resolved")
    result = run(technical(), "escalate_complex", context(resolved, results=COMPLEX))
    assert result.actions == () and "resolved" in result.message


COLLECTED = {"collect_diagnostics": {"last_comment_id": "c-1"}}
BEFORE = [comment("c-0", "hi", "agent"), comment("c-1", "error 809")]


def test_the_solution_step_waits_for_an_agents_public_answer() -> None:
    waiting_on = [
        *BEFORE,  # an agent's comment before the diagnostics does not count
        comment("c-2", "internal idea", "agent", internal=True),
        comment("c-3", "any news?"),
        comment("c-4", "Auto reply", "automation"),
    ]
    ctx = context(tech(comments=waiting_on), results=COLLECTED)
    result = run(technical(), "provide_solution", ctx)
    assert result.requires_action and result.actions == ()
    assert "waiting for an agent" in result.message
    # An agent's question is no solution: the step waits on, alike.
    asked = [*waiting_on, comment("c-5", "Which MTU is set?", "agent")]
    ctx = context(tech(comments=asked), results=COLLECTED)
    still = run(technical(), "provide_solution", ctx)
    assert still.requires_action
    assert (still.message, still.data) == (result.message, result.data)
    solved = comment("c-6", "Set MTU to 1400", "supervisor", solution=True)
    answered = [*asked, solved]
    ctx = context(tech(comments=answered, reopen_count=0), results=COLLECTED)
    result = run(technical(), "provide_solution", ctx)
    assert not result.requires_action
    assert result.data["solved_by"] == "comment"
    assert result.data["solution_comment_id"] == "c-6"
    assert result.data["reopen_count"] == 0


def test_only_an_agents_public_reply_marked_as_the_solution_completes_it() -> None:
    marked = [
        *BEFORE,
        # Marked, but by someone who cannot solve it, or not for the customer.
        comment("c-2", "Fixed it myself", solution=True),
        comment("c-3", "internal: MTU", "agent", internal=True, solution=True),
        comment("c-4", "Closing soon", "automation", solution=True),
    ]
    result = run(
        technical(),
        "provide_solution",
        context(tech(comments=marked), results=COLLECTED),
    )
    assert result.requires_action
    assert '"solution": true' in result.message


def test_a_resolved_ticket_completes_the_solution_step() -> None:
    tk = tech(status="resolved", resolved_at=T0, comments=BEFORE)
    result = run(technical(), "provide_solution", context(tk, results=COLLECTED))
    assert not result.requires_action
    assert result.data["solved_by"] == "resolved"


RESOLVED_AT = T0 + timedelta(hours=2)
SOLVED = {"provide_solution": {"reopen_count": 0, "solution_comment_id": "c-5"}}


def test_verification_waits_out_the_quiet_period_then_closes() -> None:
    tk = tech(status="resolved", resolved_at=RESOLVED_AT)
    close_at = RESOLVED_AT + timedelta(hours=72)
    ctx = context(tk, results=SOLVED, now=RESOLVED_AT + timedelta(hours=1))
    waiting = run(technical(), "verify_resolution", ctx)
    assert waiting.requires_action and waiting.actions == ()
    assert waiting.wake_at == close_at
    assert waiting.data == {
        "resolved_at": RESOLVED_AT.isoformat(),
        "close_at": close_at.isoformat(),
    }
    later = run(
        technical(), "verify_resolution", context(tk, results=SOLVED, now=close_at)
    )
    assert not later.requires_action
    assert later.actions == (TicketAction("close"),)
    assert later.data["closed"] is True


def test_the_quiet_period_is_an_option() -> None:
    tk = tech(status="resolved", resolved_at=RESOLVED_AT.isoformat())
    ctx = context(tk, results=SOLVED, options={"auto_close_after_hours": 24}, now=T0)
    assert run(
        technical(), "verify_resolution", ctx
    ).wake_at == RESOLVED_AT + timedelta(hours=24)


def test_a_reopen_goes_back_to_the_solution() -> None:
    comments = [
        *BEFORE,
        comment("c-5", "Set MTU", "agent", solution=True),
        comment("c-6", "Still broken"),
    ]
    tk = tech(status="open", reopen_count=1, comments=comments)
    result = run(technical(), "verify_resolution", context(tk, results=SOLVED))
    assert result.next_step == "provide_solution"
    assert result.data["reopened"] is True
    assert result.data["last_comment_id"] == "c-6"
    # Back in the solution step, the rejected answer no longer counts.
    results = {**COLLECTED, **SOLVED, "verify_resolution": dict(result.data)}
    again = run(technical(), "provide_solution", context(tk, results=results, visit=2))
    assert again.requires_action
    new = tech(
        status="open",
        reopen_count=1,
        comments=[*comments, comment("c-7", "Try 1300", "agent", solution=True)],
    )
    done = run(technical(), "provide_solution", context(new, results=results, visit=2))
    assert done.data["solution_comment_id"] == "c-7"
    assert done.data["reopen_count"] == 1


def test_before_the_resolution_verification_waits() -> None:
    tk = tech(status="in_progress", reopen_count=0)
    result = run(technical(), "verify_resolution", context(tk, results=SOLVED))
    assert result.requires_action and result.wake_at is None
    assert result.message == "waiting for the ticket to be resolved"
    # An earlier reopen (before the solution) is not a new one.
    reopened_before = tech(status="in_progress", reopen_count=1)
    solved_after = {"provide_solution": {"reopen_count": 1}}
    result = run(
        technical(), "verify_resolution", context(reopened_before, results=solved_after)
    )
    assert result.requires_action and result.next_step is None


def test_a_ticket_closed_by_someone_ends_the_verification() -> None:
    result = run(
        technical(), "verify_resolution", context(tech(status="closed"), results=SOLVED)
    )
    assert not result.requires_action and result.actions == ()
    assert result.data["closed"] is True


# == billing ===========================================================================

billing = BillingWorkflow
ACTIVE = {"account_id": "acc-9", "status": "active", "plan": "pro"}


def bill(**changes: Any) -> dict[str, Any]:
    return ticket(workflow_type="billing", category="billing", **changes)


def test_an_active_account_is_verified() -> None:
    hooks = ScriptedIntegrations(account_lookup=ACTIVE)
    result = run(billing(), "verify_account", context(bill(), integrations=hooks))
    (call,) = hooks.calls
    assert call.name == ACCOUNT_LOOKUP
    assert call.payload == {
        "ticket_id": "t-1",
        "customer_id": "cust-1",
        "customer_email": "ann@example.com",
    }
    assert call.idempotency_key == "t-1:verify_account:1"
    assert result.data["verified"] is True
    assert result.data["account_id"] == "acc-9"
    assert result.next_step is None and result.actions == ()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"account_id": "acc-9", "status": "suspended"}, "account acc-9 is suspended"),
        ({"account_id": "acc-9", "status": "Closed"}, "account acc-9 is closed"),
        ({}, "found no account"),
        ({"account_id": "acc-9", "found": False}, "found no account"),
    ],
)
def test_an_account_not_active_goes_to_a_person_and_the_customer_is_told(
    answer: dict[str, Any], why: str
) -> None:
    hooks = ScriptedIntegrations(account_lookup=answer)
    result = run(billing(), "verify_account", context(bill(), integrations=hooks))
    assert result.success
    assert result.data["verified"] is False
    assert why in result.data["why"]
    assert result.next_step == "confirm_with_customer"
    note = only_comment(result)
    assert note.fields["internal"] is True and why in note.fields["body"]


def test_the_active_account_statuses_are_an_option() -> None:
    hooks = ScriptedIntegrations(account_lookup={"account_id": "a", "status": "trial"})
    options = {"active_account_statuses": ["active", "trial"]}
    ctx = context(bill(), integrations=hooks, options=options)
    assert run(billing(), "verify_account", ctx).data["verified"] is True


def test_a_lookup_system_that_is_down_fails_the_step() -> None:
    hooks = ScriptedIntegrations(account_lookup=HookFailed("down", retryable=True))
    with pytest.raises(HookFailed):
        run(billing(), "verify_account", context(bill(), integrations=hooks))


VERIFIED = {"verify_account": {"verified": True, "account_id": "acc-9"}}
INVOICES = [
    {"id": "inv-1", "amount": 30.0, "disputed": False},
    {"id": "inv-2", "amount": "45.50", "currency": "EUR", "disputed": True},
    {"id": "inv-3", "amount": 20, "disputed": True},
    {"id": "inv-4", "amount": 99, "currency": "USD", "disputed": True},
]


def test_the_history_sums_the_disputed_invoices() -> None:
    hooks = ScriptedIntegrations(billing_history={"invoices": INVOICES})
    result = run(
        billing(),
        "review_billing_history",
        context(bill(), results=VERIFIED, integrations=hooks),
    )
    (call,) = hooks.calls
    assert call.name == BILLING_HISTORY and call.payload["account_id"] == "acc-9"
    assert result.data["invoices"] == INVOICES
    assert result.data["disputed_invoices"] == ["inv-2", "inv-3"]
    assert result.data["disputed_amount"] == 65.5
    assert result.data["currency"] == "EUR"
    assert result.data["source"] == "invoices"
    assert result.data["ignored_invoices"] == [{"id": "inv-4", "why": "in USD"}]


def test_without_disputed_invoices_the_tickets_field_gives_the_amount() -> None:
    hooks = ScriptedIntegrations(billing_history={"invoices": INVOICES[:1]})
    tk = bill(custom_fields={"disputed_amount": "12.5"})
    result = run(
        billing(),
        "review_billing_history",
        context(tk, results=VERIFIED, integrations=hooks),
    )
    assert (result.data["disputed_amount"], result.data["source"]) == (
        12.5,
        "custom_field",
    )
    nothing = run(
        billing(),
        "review_billing_history",
        context(
            bill(),
            results=VERIFIED,
            integrations=ScriptedIntegrations(billing_history={}),
        ),
    )
    assert (nothing.data["disputed_amount"], nothing.data["source"]) == (0.0, "none")


def history(amount: float, currency: str = "EUR") -> dict[str, dict[str, Any]]:
    return {
        "review_billing_history": {
            "disputed_amount": amount,
            "currency": currency,
            "why": "disputed invoices inv-2",
        }
    }


def test_the_adjustment_is_the_disputed_amount() -> None:
    result = run(
        billing(), "calculate_adjustment", context(bill(), results=history(65.5))
    )
    assert result.data["amount"] == 65.5 and result.data["currency"] == "EUR"
    assert result.next_step is None
    assert "65.50 EUR" in result.message


def test_no_disputed_amount_skips_to_the_confirmation() -> None:
    result = run(billing(), "calculate_adjustment", context(bill(), results=history(0)))
    assert result.data["amount"] == 0.0
    assert result.next_step == "confirm_with_customer"
    assert "no adjustment due" in result.message
    steps = billing().step_names
    assert following_step(steps, "calculate_adjustment", result) == (
        "confirm_with_customer",
        ["approve_adjustment", "apply_adjustment"],
    )


def adjustment(amount: float) -> dict[str, dict[str, Any]]:
    return {"calculate_adjustment": {"amount": amount, "currency": "EUR"}}


@pytest.mark.parametrize("amount", [65.5, 100.0])
def test_an_adjustment_up_to_the_limit_is_approved_automatically(amount: float) -> None:
    result = run(
        billing(), "approve_adjustment", context(bill(), results=adjustment(amount))
    )
    assert not result.requires_action
    assert result.data["approved"] is True
    assert result.data["approved_by"] == "automatic"
    assert "100.00 EUR" in result.data["why"]


def test_a_larger_adjustment_waits_for_a_supervisor_and_keeps_waiting_alike() -> None:
    ctx = context(bill(), results=adjustment(250))
    result = run(billing(), "approve_adjustment", ctx)
    assert result.requires_action and result.actions == ()
    assert result.message == "a supervisor must approve an adjustment of 250.00 EUR"
    again = run(
        billing(),
        "approve_adjustment",
        context(bill(status="open"), results=adjustment(250)),
    )
    assert (again.message, again.data) == (result.message, result.data)
    lower = context(bill(), results=adjustment(60), options={"approval_above": 50})
    assert run(billing(), "approve_adjustment", lower).requires_action


def test_an_approved_adjustment_is_applied_once_by_its_idempotency_key() -> None:
    hooks = ScriptedIntegrations(apply_adjustment={"reference": "ADJ-77"})
    results = {**VERIFIED, **adjustment(250), "approve_adjustment": {"approved": True}}
    ctx = context(bill(), results=results, integrations=hooks, visit=2)
    result = run(billing(), "apply_adjustment", ctx)
    run(billing(), "apply_adjustment", ctx)  # a retry asks with the same key
    first, retry = hooks.calls
    assert first == retry
    assert first.name == APPLY_ADJUSTMENT
    assert first.idempotency_key == "t-1:apply_adjustment:2"
    assert first.payload == {
        "ticket_id": "t-1",
        "ticket_number": 42,
        "account_id": "acc-9",
        "amount": 250.0,
        "currency": "EUR",
    }
    assert result.data["applied"] is True
    assert result.data["confirmation"] == {"reference": "ADJ-77"}


def test_an_adjustment_a_supervisor_declined_is_not_applied() -> None:
    hooks = ScriptedIntegrations(apply_adjustment={"reference": "never"})
    results = {**VERIFIED, **adjustment(250), "approve_adjustment": {"approved": False}}
    result = run(
        billing(),
        "apply_adjustment",
        context(bill(), results=results, integrations=hooks),
    )
    assert hooks.calls == []
    assert result.data["applied"] is False


def test_a_failing_billing_system_fails_the_apply_step() -> None:
    hooks = ScriptedIntegrations(apply_adjustment=HookFailed("down", retryable=True))
    results = {**VERIFIED, **adjustment(20), "approve_adjustment": {"approved": True}}
    with pytest.raises(HookFailed):
        run(
            billing(),
            "apply_adjustment",
            context(bill(), results=results, integrations=hooks),
        )


@pytest.mark.parametrize(
    ("results", "outcome", "words"),
    [
        (
            {
                **VERIFIED,
                "apply_adjustment": {
                    "applied": True,
                    "amount": 65.5,
                    "currency": "EUR",
                    "confirmation": {"reference": "ADJ-77"},
                },
            },
            "applied",
            "applied an adjustment of 65.50 EUR to your account (reference ADJ-77).",
        ),
        ({**VERIFIED, **adjustment(0)}, "no_adjustment", "no adjustment is due"),
        (
            {**VERIFIED, "apply_adjustment": {"applied": False}},
            "not_approved",
            "will not apply an adjustment",
        ),
        (
            {"verify_account": {"verified": False}},
            "account_not_verified",
            "could not match your request to an active account",
        ),
    ],
)
def test_the_customer_is_told_the_outcome(
    results: dict[str, dict[str, Any]], outcome: str, words: str
) -> None:
    result = run(billing(), "confirm_with_customer", context(bill(), results=results))
    told = only_comment(result)
    assert told.fields["internal"] is False
    assert words in told.fields["body"]
    assert result.data["outcome"] == outcome


def test_a_small_dispute_runs_through_to_the_confirmation() -> None:
    hooks = ScriptedIntegrations(
        account_lookup=ACTIVE,
        billing_history={"invoices": INVOICES},
        apply_adjustment={"adjustment_id": "ADJ-1"},
    )
    path, results, last = drive(
        billing(), lambda r: context(bill(), results=r, integrations=hooks)
    )
    assert path == billing().step_names
    assert [c.name for c in hooks.calls] == [
        ACCOUNT_LOOKUP,
        BILLING_HISTORY,
        APPLY_ADJUSTMENT,
    ]
    assert results["apply_adjustment"]["amount"] == 65.5
    assert "65.50 EUR" in only_comment(last).fields["body"]


def test_a_large_dispute_stops_at_the_approval() -> None:
    invoices = [{"id": "inv-9", "amount": 500, "disputed": True}]
    hooks = ScriptedIntegrations(
        account_lookup=ACTIVE, billing_history={"invoices": invoices}
    )
    path, _, last = drive(
        billing(), lambda r: context(bill(), results=r, integrations=hooks)
    )
    assert path[-1] == "approve_adjustment"
    assert last.requires_action
    assert [c.name for c in hooks.calls] == [ACCOUNT_LOOKUP, BILLING_HISTORY]


def test_a_suspended_account_goes_straight_to_the_confirmation() -> None:
    hooks = ScriptedIntegrations(
        account_lookup={"account_id": "acc-9", "status": "suspended"}
    )
    path, _, last = drive(
        billing(), lambda r: context(bill(), results=r, integrations=hooks)
    )
    assert path == ["verify_account", "confirm_with_customer"]
    assert last.data["outcome"] == "account_not_verified"


# == steps whose system is not configured ==========================================

APPROVED_20 = {**VERIFIED, **adjustment(20), "approve_adjustment": {"approved": True}}


@pytest.mark.parametrize(
    ("workflow", "step", "results", "hook", "by_hand"),
    [
        (billing, "verify_account", {}, ACCOUNT_LOOKUP, "look up the customer's"),
        (
            billing,
            "review_billing_history",
            VERIFIED,
            BILLING_HISTORY,
            "read the account's invoices",
        ),
        (
            billing,
            "apply_adjustment",
            APPROVED_20,
            APPLY_ADJUSTMENT,
            "apply the approved adjustment of 20.00 EUR to account acc-9",
        ),
        (technical, "analyze", {}, DIAGNOSTICS, "judge whether the problem"),
    ],
)
def test_a_step_whose_system_is_not_configured_waits_for_a_person(
    workflow: type[TicketWorkflow],
    step: str,
    results: dict[str, dict[str, Any]],
    hook: str,
    by_hand: str,
) -> None:
    hooks = ScriptedIntegrations()  # nothing configured, as out of the box
    tk = bill() if workflow is billing else tech()
    result = run(workflow(), step, context(tk, results=results, integrations=hooks))
    assert [c.name for c in hooks.calls] == [hook]
    assert result.success and result.requires_action, result.message
    assert result.message.startswith(f"no integration {hook!r} is configured")
    assert by_hand in result.message
    assert f"/workflow/steps/{step}/complete" in result.message
    assert f"configure {hook!r} in the settings section 'integrations'" in (
        result.message
    )
    assert result.data["integration"] == hook
    assert result.data["settings_section"] == "integrations"
    assert result.data["handed_to_a_person"] is True
    # Every run waits alike: the wait is recorded once.
    again = run(workflow(), step, context(tk, results=results))
    assert (again.message, again.data) == (result.message, result.data)


def test_a_billing_dispute_without_integrations_is_done_by_people() -> None:
    """What people complete each step with carries the workflow to the end."""
    by_people = {
        "verify_account": {"verified": True, "account_id": "ACC-7", "status": "active"},
        "review_billing_history": {"disputed_amount": 40, "currency": "EUR"},
        "apply_adjustment": {"applied": True, "reference": "ADJ-9"},
    }
    results: dict[str, dict[str, Any]] = {}
    waited: list[str] = []
    for step in billing().step_names:
        result = run(billing(), step, context(bill(), results=results))
        if result.requires_action:
            waited.append(step)
            results[step] = by_people[step]  # POST …/steps/<step>/complete
        else:
            results[step] = dict(result.data)
    assert waited == ["verify_account", "review_billing_history", "apply_adjustment"]
    assert results["calculate_adjustment"]["amount"] == 40.0
    assert results["approve_adjustment"]["approved"] is True
    assert results["confirm_with_customer"]["outcome"] == "applied"
    assert results["confirm_with_customer"]["body"] == (
        "We have reviewed your billing history and applied an adjustment of"
        " 40.00 EUR to your account (reference ADJ-9)."
    )


def test_an_account_a_person_did_not_verify_is_not_reviewed() -> None:
    results = {"verify_account": {"verified": False}}
    result = run(billing(), "review_billing_history", context(bill(), results=results))
    assert result.next_step == "confirm_with_customer"
    assert result.data["reviewed"] is False

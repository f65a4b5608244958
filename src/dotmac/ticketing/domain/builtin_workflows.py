"""The built-in workflows (issue #6): customer support, technical support, billing.

Each is a :class:`~domain.workflow.TicketWorkflow` with one ``step_<name>``
coroutine per step. A step reads the ticket and earlier results from its
:class:`~domain.workflow.WorkflowContext`, changes the ticket only through
the actions of its result, and reaches other systems only through
``context.integrations`` with the step's idempotency key.

A tenant tunes them in ``settings.workflows.options.<workflow_type>``; a
missing option, or one of the wrong type, takes the default below:

================================  ==========================================
``customer_support``
``min_title_length``              5 (characters a meaningful title has)
``technical_support``
``diagnostics_questions``         per kind of problem (``outage``,
                                  ``device``, ``general``) the question
                                  asked: ``domain.diagnostics``
``diagnostics_question``          none (older: one question for every
                                  kind the option above does not word)
``skip_diagnostics_for``          none (``priorities``, ``categories``
                                  whose tickets are not asked)
``diagnostics_min_length``        80 (a description this long is enough)
``escalation_team``               none (no escalation rule matches: the
                                  ticket's current team keeps it, and no
                                  escalation is recorded)
``auto_close_after_hours``        72 (quiet period after the resolution)
``billing``
``currency``                      ``"EUR"``
``approval_above``                100.0 (larger adjustments wait for a
                                  supervisor)
``active_account_statuses``       ``["active"]``
================================  ==========================================

Two rules every waiting step here follows, because of how the service
records a wait (``service.workflows``): a step waits again on every change
of the ticket, and a new wait is recorded (and the result's actions applied
again) only when its message, data or ``wake_at`` differ from the current
wait. So waiting data never holds ``now``, and a question to the customer
is asked only when the step does not find it on the ticket already.

How a failure is treated: the runtime turns an exception raised by a step
into a failed result, retried unless the exception says ``retryable`` is
False. The hook steps let another system's errors propagate (a system that
is down is a retried ``WorkflowStepFailed``, a refusal a final one).

A hook the tenant did not configure is not a failure: out of the box no
integration is configured, and the step hands itself to a person
(:func:`~domain.workflow.handed_to_a_person`). It waits, saying what to do
by hand, the data to complete it with through ``POST …/workflow/steps/
<step>/complete``, and the hook to configure under ``integrations`` to
automate it; once configured, the step calls it on the ticket's next
change. What a person completes a step with is read like the hook's
answer (``verify_account``: ``verified``, ``account_id``;
``review_billing_history``: ``disputed_amount``, ``currency``;
``apply_adjustment``: ``applied``, ``reference``; ``analyze``:
``complex``, ``summary``).

Pure: the standard library and other domain modules only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from dotmac.ticketing.domain.acknowledgment import instant, readable, reply_promise
from dotmac.ticketing.domain.categorization import categorize
from dotmac.ticketing.domain.diagnostics import (
    DiagnosticsChoice,
    choose_question,
    questions_of,
)
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES, TicketCategory, TicketStatus
from dotmac.ticketing.domain.escalation_change import escalation_change, holder
from dotmac.ticketing.domain.limits import COMMENT_MAX
from dotmac.ticketing.domain.provenance import AGENT_ROLES
from dotmac.ticketing.domain.rules import TicketFacts, matches
from dotmac.ticketing.domain.sla import FIRST_RESPONSE
from dotmac.ticketing.domain.tenant_settings import settings_section
from dotmac.ticketing.domain.workflow import (
    IntegrationNotConfigured,
    RetryPolicy,
    TicketAction,
    TicketWorkflow,
    WorkflowResult,
    WorkflowStep,
    handed_to_a_person,
)

__all__ = [
    "ACCOUNT_LOOKUP",
    "APPLY_ADJUSTMENT",
    "BILLING_HISTORY",
    "BUILTIN_WORKFLOWS",
    "DIAGNOSTICS",
    "BillingWorkflow",
    "CustomerSupportWorkflow",
    "TechnicalSupportWorkflow",
]

#: The hooks these workflows call: the same names as ``consumers.integrations``
#: (the domain may not import it), and as a tenant's ``integrations`` keys.
ACCOUNT_LOOKUP = "account_lookup"
BILLING_HISTORY = "billing_history"
APPLY_ADJUSTMENT = "apply_adjustment"
DIAGNOSTICS = "diagnostics"

# Another system's outage usually lasts minutes, sometimes an hour: 8
# attempts 30 s apart, doubling up to 30 min, keep trying for about an hour
# (30+60+...+960+1800 s) before a person has to retry by hand.
_HOOK_RETRY = RetryPolicy(
    max_attempts=8, backoff_seconds=30.0, multiplier=2.0, max_backoff_seconds=1800.0
)

# Titles that name no problem: the words of the title, lower-cased.
_GENERIC_TITLES = frozenset(
    {
        "help",
        "help me",
        "help needed",
        "need help",
        "please help",
        "problem",
        "issue",
        "question",
        "support",
        "request",
        "urgent",
        "hi",
        "hello",
        "test",
        "no subject",
        "no title",
        "untitled",
    }
)

# Without an analysis the priority says whether a problem is complex.
_COMPLEX_PRIORITIES = ("critical", "urgent")
_CUSTOMER = "customer"
_AUTOMATION = "automation"
# An escalation reason is a ticket event's reason (domain.limits.REASON_MAX).
_REASON_CHARS = 500
_CENT = Decimal("0.01")
# Who may approve an adjustment above the limit (issue #6: a supervisor).
_APPROVERS = frozenset({"supervisor", "admin"})


# -- the results a step returns ---------------------------------------------------


def _done(
    step: str,
    message: str,
    data: Mapping[str, Any],
    *,
    actions: Sequence[TicketAction] = (),
    next_step: str | None = None,
) -> WorkflowResult:
    return WorkflowResult(
        success=True,
        step_name=step,
        data=dict(data),
        message=message,
        actions=tuple(actions),
        next_step=next_step,
    )


def _waiting(
    step: str,
    message: str,
    data: Mapping[str, Any],
    *,
    actions: Sequence[TicketAction] = (),
    wake_at: datetime | None = None,
) -> WorkflowResult:
    return WorkflowResult(
        success=True,
        step_name=step,
        data=dict(data),
        message=message,
        requires_action=True,
        actions=tuple(actions),
        wake_at=wake_at,
    )


def _comment(
    body: str, *, internal: bool = False, acknowledgment: bool = False
) -> TicketAction:
    fields: dict[str, Any] = {"body": body, "internal": internal}
    if acknowledgment:
        fields["acknowledgment"] = True
    return TicketAction("comment", fields)


# -- reading the ticket, the options and other systems' answers -------------------


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _number(value: Any) -> float | None:
    # bool is an int to Python, not a number to a person typing options.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _option_number(options: Mapping[str, Any], key: str, default: float) -> float:
    found = _number(options.get(key))
    return default if found is None or found < 0 else found


def _option_text(options: Mapping[str, Any], key: str, default: str) -> str:
    value = options.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else default


def _money(value: Any) -> Decimal | None:
    """An amount (number or numeric text) rounded to cents; None if it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _shown(amount: Decimal | float, currency: str) -> str:
    return f"{Decimal(str(amount)).quantize(_CENT)} {currency}"


def _comments(ticket: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = ticket.get("comments") or []
    return [c for c in found if isinstance(c, Mapping)]


def _public_by(comment: Mapping[str, Any], roles: Collection[str]) -> bool:
    return not comment.get("internal") and comment.get("author_role") in roles


def _after(
    comments: Sequence[Mapping[str, Any]], comment_id: Any
) -> Sequence[Mapping[str, Any]]:
    """The comments after the one with ``comment_id`` (all, if it is not there).

    Comments are oldest first, so their order, not their timestamps (which
    two comments of one save share), tells what came after.
    """
    for index, comment in enumerate(comments):
        if comment_id is not None and comment.get("id") == comment_id:
            return comments[index + 1 :]
    return comments


def _last_index(
    comments: Sequence[Mapping[str, Any]],
    wanted: Callable[[Mapping[str, Any]], bool],
) -> int | None:
    for index in range(len(comments) - 1, -1, -1):
        if wanted(comments[index]):
            return index
    return None


def _last_comment_id(ticket: Mapping[str, Any]) -> str | None:
    comments = _comments(ticket)
    return None if not comments else _text(comments[-1], "id") or None


def _facts(ticket: Mapping[str, Any]) -> TicketFacts:
    """What rules see of the ticket (as ``domain.deadlines.facts_of``)."""
    return TicketFacts(
        category=_text(ticket, "category"),
        priority=_text(ticket, "priority"),
        channel=_text(ticket, "channel"),
        tags=tuple(str(tag) for tag in ticket.get("tags") or ()),
        custom_fields=dict(ticket.get("custom_fields") or {}),
        title=_text(ticket, "title"),
        description=_text(ticket, "description"),
    )


def _result(results: Mapping[str, Mapping[str, Any]], step: str) -> Mapping[str, Any]:
    return results.get(step) or {}


# == customer support ================================================================


class CustomerSupportWorkflow(TicketWorkflow):
    """Validate, categorise, route, acknowledge, and note the SLA clocks."""

    def __init__(self) -> None:
        super().__init__(
            workflow_type="customer_support",
            steps=[
                WorkflowStep(
                    "validate_ticket",
                    "Check the title says what is wrong, a description is given"
                    " and the customer can be reached; ask for a missing"
                    " description.",
                ),
                WorkflowStep(
                    "auto_categorize",
                    "Set the category the tenant's categorisation rules suggest,"
                    " unless a person chose it.",
                ),
                WorkflowStep(
                    "assign_team",
                    "Route an unassigned ticket through the tenant's assignment rules.",
                ),
                WorkflowStep(
                    "send_acknowledgment",
                    "Tell the customer the ticket number and when to expect an answer.",
                ),
                WorkflowStep(
                    "start_sla_monitoring",
                    "Record the SLA due times the timers watch.",
                ),
            ],
        )

    async def step_validate_ticket(self) -> WorkflowResult:
        ticket = self.context.ticket
        min_length = int(_option_number(self.context.options, "min_title_length", 5))
        problems: dict[str, str] = {}
        title_problem = _title_problem(_text(ticket, "title"), min_length)
        if title_problem is not None:
            problems["title"] = title_problem
        if not _text(ticket, "description").strip():
            problems["description"] = "the description is empty"
        if not (_text(ticket, "customer_email") or _text(ticket, "customer_id")):
            problems["contact"] = "neither a customer e-mail nor a customer id is set"
        actions: list[TicketAction] = []
        if "description" in problems:
            actions.append(
                _comment(
                    "Thank you for contacting us. To help you quickly, please"
                    " reply with a description of the problem: what you were"
                    " doing, what you expected, what happened instead, and any"
                    " error message you saw."
                )
            )
        data = {
            "valid": not problems,
            "missing": list(problems),
            "problems": problems,
            "asked_customer_for_details": bool(actions),
        }
        if not problems:
            return _done("validate_ticket", "the ticket information is complete", data)
        message = "; ".join(problems.values())
        if actions:
            message += "; asked the customer for details"
        return _done("validate_ticket", message, data, actions=actions)

    async def step_auto_categorize(self) -> WorkflowResult:
        ticket = self.context.ticket
        current = _text(ticket, "category")
        if ticket.get("category_set_by_person"):
            return _done(
                "auto_categorize",
                f"kept {current}: a person chose the category",
                {
                    "categorized": False,
                    "category": current,
                    "decided_by": "person",
                    "why": "a person set the category; rules never override a person",
                },
            )
        rules = settings_section(self.context.settings, "categorization_rules") or []
        found = categorize(rules, _text(ticket, "title"), _text(ticket, "description"))
        if found is None:
            return _done(
                "auto_categorize",
                f"kept {current}: no categorisation rule matched",
                {
                    "categorized": False,
                    "category": current,
                    "why": "no categorisation rule matched the title or description",
                },
            )
        explained = {"match": found.as_dict(), "explanation": found.explanation()}
        if found.category == current:
            return _done(
                "auto_categorize",
                f"kept {current}: the rules agree",
                {
                    "categorized": False,
                    "category": current,
                    "why": "the best matching rule suggests the current category",
                    **explained,
                },
            )
        if found.category not in {c.value for c in TicketCategory}:
            return _done(
                "auto_categorize",
                f"kept {current}: rule {found.rule!r} names an unknown category",
                {
                    "categorized": False,
                    "category": current,
                    "why": f"{found.category!r} is not a ticket category",
                    **explained,
                },
            )
        return _done(
            "auto_categorize",
            found.explanation(),
            {
                "categorized": True,
                "category": found.category,
                "previous_category": current,
                "confidence": found.confidence,
                **explained,
            },
            actions=[
                TicketAction(
                    "categorize",
                    {"category": found.category, "confidence": found.confidence},
                )
            ],
        )

    async def step_assign_team(self) -> WorkflowResult:
        ticket = self.context.ticket
        team, assignee = _text(ticket, "assigned_team"), _text(ticket, "assignee_id")
        if team or assignee:
            holder = f"team {team}" if team else f"agent {assignee}"
            return _done(
                "assign_team",
                f"already assigned to {holder}",
                {
                    "requested": False,
                    "assigned_team": team or None,
                    "assignee_id": assignee or None,
                    "why": f"the ticket is already with {holder}",
                },
            )
        # No team in the action: the service asks the tenant's assignment
        # rules (and skips the assignment when none routes this ticket).
        return _done(
            "assign_team",
            "asked the assignment rules to route the ticket",
            {
                "requested": True,
                "why": "the ticket has no team; the tenant's assignment rules pick"
                " one (no assignment when no rule matches)",
            },
            actions=[TicketAction("assign", {})],
        )

    async def step_send_acknowledgment(self) -> WorkflowResult:
        ticket = self.context.ticket
        number = ticket.get("number")
        reference = f"#{number}" if number is not None else _text(ticket, "id")
        due = reply_promise(
            (ticket.get("sla") or {}).get(FIRST_RESPONSE),
            ticket.get("first_response_at"),
        )
        promise = due is not None
        title = _text(ticket, "title").strip()
        lines = [
            "Thank you for contacting us. We have received your request"
            + (f' "{title}"' if title else "")
            + f" as ticket {reference}."
        ]
        if promise and due is not None:
            lines.append(f"An agent will reply by {readable(due)}.")
        else:
            lines.append("An agent will reply as soon as possible.")
        lines.append("You can add details at any time by replying to this ticket.")
        return _done(
            "send_acknowledgment",
            f"acknowledged ticket {reference}"
            + (f"; reply promised by {readable(due)}" if promise and due else ""),
            {
                "acknowledged": True,
                "ticket_number": number,
                "first_response_due_at": _iso(due) if promise else None,
            },
            # The customer had the acknowledgment e-mail when the ticket
            # opened: this is its record on the ticket, not a second mail.
            actions=[_comment("\n\n".join(lines), acknowledgment=True)],
        )

    async def step_start_sla_monitoring(self) -> WorkflowResult:
        # The clocks start with the ticket and the timers warn and breach;
        # this step records, in the workflow's history, what they watch.
        sla = self.context.ticket.get("sla") or {}
        targets = {
            str(target): {
                "due_at": _iso(instant(clock.get("due_at"))),
                "state": clock.get("state"),
            }
            for target, clock in sorted(sla.items())
            if isinstance(clock, Mapping)
        }
        if not targets:
            return _done(
                "start_sla_monitoring",
                "no SLA clock runs for this ticket",
                {"monitored": False, "targets": {}},
            )
        parts = []
        for target, clock in targets.items():
            due = instant(clock["due_at"])
            when = f"due {readable(due)}" if due else "no due time"
            parts.append(f"{target} {when} ({clock['state']})")
        return _done(
            "start_sla_monitoring",
            "SLA clocks: " + "; ".join(parts),
            {"monitored": True, "targets": targets},
        )


def _title_problem(title: str, min_length: int) -> str | None:
    """Why the title does not say what is wrong, or None when it does."""
    if len(title.strip()) < min_length:
        return f"the title is shorter than {min_length} characters"
    if not any(char.isalpha() for char in title):
        return "the title has no words"
    words = " ".join(re.sub(r"[^\w\s]", " ", title.casefold()).split())
    if words in _GENERIC_TITLES:
        return f"the title {title.strip()!r} does not say what the problem is"
    return None


# == technical support ===============================================================


class TechnicalSupportWorkflow(TicketWorkflow):
    """Diagnose with the customer, analyse, escalate, solve, verify, close."""

    def __init__(self) -> None:
        super().__init__(
            workflow_type="technical_support",
            steps=[
                WorkflowStep(
                    "collect_diagnostics",
                    "Ask the customer for diagnostic information (unless given)"
                    " and wait for the answer.",
                ),
                WorkflowStep(
                    "analyze",
                    "Have the diagnostics system analyse the problem; without"
                    " one, a person judges it.",
                    retry=_HOOK_RETRY,
                ),
                WorkflowStep(
                    "escalate_complex",
                    "Escalate a complex problem to the team of the matching"
                    " escalation rule.",
                ),
                WorkflowStep(
                    "provide_solution",
                    "Wait for the solution: the resolution, or an agent's public"
                    " reply marked as the solution.",
                ),
                WorkflowStep(
                    "verify_resolution",
                    "Wait for the resolution; close after the quiet period, or"
                    " go back to the solution when the customer reopens.",
                ),
            ],
        )

    async def step_collect_diagnostics(self) -> WorkflowResult:
        ticket = self.context.ticket
        options = self.context.options
        comments = _comments(ticket)
        # Our own question, found on the ticket: only completed steps'
        # results are in the context, not what an earlier (waiting) run did.
        # Any kind's: a ticket that changed since (a priority raised) is
        # not asked a second question.
        ours = set(questions_of(options).values())
        asked = _last_index(
            comments,
            lambda c: _public_by(c, (_AUTOMATION,)) and _text(c, "body") in ours,
        )
        if asked is not None:
            replies = [c for c in comments[asked + 1 :] if _public_by(c, (_CUSTOMER,))]
            if replies:
                return _done(
                    "collect_diagnostics",
                    f"the customer answered the diagnostic question in"
                    f" {len(replies)} comment(s)",
                    {
                        "asked": True,
                        "source": "customer_reply",
                        "question_comment_id": comments[asked].get("id"),
                        "comment_ids": [c.get("id") for c in replies],
                        "diagnostics": _joined(replies),
                        "last_comment_id": _last_comment_id(ticket),
                    },
                )
        given = [c for c in comments if _public_by(c, (_CUSTOMER,))]
        description = _text(ticket, "description").strip()
        min_length = int(_option_number(options, "diagnostics_min_length", 80))
        if asked is None and (given or len(description) >= min_length):
            if given:
                source, text = "customer_comments", _joined(given)
                why = f"the customer already added {len(given)} comment(s)"
            else:
                source, text = "description", description[:COMMENT_MAX]
                why = (
                    f"the description has {len(description)} characters"
                    f" (at least {min_length})"
                )
            return _done(
                "collect_diagnostics",
                f"not asked: {why}",
                {
                    "asked": False,
                    "source": source,
                    "why": why,
                    "comment_ids": [c.get("id") for c in given],
                    "diagnostics": text,
                    "last_comment_id": _last_comment_id(ticket),
                },
            )
        choice = choose_question(
            priority=_text(ticket, "priority"),
            category=_text(ticket, "category"),
            title=_text(ticket, "title"),
            description=description,
            options=options,
        )
        if choice.skipped:
            # Also when asked before the ticket became one the tenant skips
            # (a priority raised to critical): nobody waits for the answer.
            return _done(
                "collect_diagnostics",
                ("not asked" if asked is None else "no longer waited for")
                + f": {choice.why}",
                {
                    "asked": asked is not None,
                    "source": "skipped",
                    "why": choice.why,
                    "comment_ids": [c.get("id") for c in given],
                    "diagnostics": description[:COMMENT_MAX],
                    "last_comment_id": _last_comment_id(ticket),
                },
            )
        if asked is not None:
            # The same wait on every run: the question as it was asked.
            question = _text(comments[asked], "body")
            return _waiting(
                "collect_diagnostics",
                "waiting for the customer's diagnostic information",
                {"question": question, "kind": _kind_of(question, choice, options)},
            )
        return _waiting(
            "collect_diagnostics",
            "waiting for the customer's diagnostic information",
            {"question": choice.question, "kind": choice.kind},
            actions=[_comment(str(choice.question))],
        )

    async def step_analyze(self) -> WorkflowResult:
        ticket = self.context.ticket
        diagnostics = _result(self.context.results, "collect_diagnostics")
        priority = _text(ticket, "priority")
        by_priority = priority in _COMPLEX_PRIORITIES
        priority_why = (
            f"priority {priority} is "
            + ("" if by_priority else "not ")
            + f"one of {', '.join(_COMPLEX_PRIORITIES)}"
        )
        payload = {
            "ticket_id": _text(ticket, "id"),
            "title": _text(ticket, "title"),
            "description": _text(ticket, "description"),
            "diagnostics": _text(diagnostics, "diagnostics"),
            "priority": priority,
            "category": _text(ticket, "category"),
        }
        try:
            answer = await self.context.integrations.call(
                DIAGNOSTICS,
                payload,
                idempotency_key=self.context.idempotency_key("analyze"),
            )
        except IntegrationNotConfigured:
            return handed_to_a_person(
                "analyze",
                DIAGNOSTICS,
                "read the diagnostics the customer gave and judge whether the"
                " problem is complex (complex problems are escalated)",
                {"complex": by_priority, "summary": "what the problem is"},
            )
        verdict = answer.get("complex")
        if isinstance(verdict, bool):
            complex_problem = verdict
            why = "the diagnostics system judged it " + (
                "complex" if verdict else "not complex"
            )
        else:
            complex_problem = by_priority
            why = f"the diagnostics answer did not say; {priority_why}"
        summary = answer.get("summary")
        return _done(
            "analyze",
            ("complex" if complex_problem else "not complex")
            + (f": {summary}"[:_REASON_CHARS] if isinstance(summary, str) else ""),
            {
                "analysis": answer,
                "complex": complex_problem,
                "summary": summary if isinstance(summary, str) else None,
                "why": why,
            },
        )

    async def step_escalate_complex(self) -> WorkflowResult:
        ticket = self.context.ticket
        analysis = _result(self.context.results, "analyze")
        if analysis.get("complex") is not True:
            return _done(
                "escalate_complex",
                "not escalated: the problem is not complex",
                {"escalated": False, "why": "the analysis did not find it complex"},
            )
        status = _text(ticket, "status")
        if status not in ACTIVE_STATUSES:
            return _done(
                "escalate_complex",
                f"not escalated: the ticket is {status}",
                {"escalated": False, "why": f"the ticket is {status}, not active"},
            )
        level = int(ticket.get("escalation_level") or 0)
        facts = _facts(ticket)
        rules = settings_section(self.context.settings, "escalation_rules") or []
        # A rule at or below the current level has had its say already.
        candidates = [r for r in rules if int(r.get("level", 1)) > level]
        rule = next(
            (r for r in candidates if matches(r.get("conditions"), facts)), None
        )
        if rule is not None:
            team: str | None = str(rule["escalate_to_team"])
            chosen_by = f"escalation rule {rule['name']!r}"
        else:
            team = _option_text(self.context.options, "escalation_team", "") or None
            chosen_by = (
                "the workflow option escalation_team"
                if team
                else "no escalation rule or option names a team"
            )
        summary = analysis.get("summary") or analysis.get("why") or "see the analysis"
        reason = f"complex problem: {summary}"[:_REASON_CHARS]
        change = escalation_change(
            current_team=_text(ticket, "assigned_team") or None,
            current_assignee=_text(ticket, "assignee_id") or None,
            team=team,
        )
        if not change.changes:
            # Escalating to whoever holds the ticket would mail "Escalated"
            # to them and count an escalation that moved nothing: the ticket
            # would record none anyway (domain.escalation_change).
            kept = holder(change.team, change.assignee_id)
            return _done(
                "escalate_complex",
                f"not escalated: kept by the current team, {kept} ({chosen_by})",
                {
                    "escalated": False,
                    "kept_by": kept,
                    "team": change.team,
                    "rule": None if rule is None else rule.get("name"),
                    "chosen_by": chosen_by,
                    "reason": reason,
                    "why": f"the escalation would change nothing: {change.why}",
                },
            )
        fields: dict[str, Any] = {"reason": reason}
        if team:
            fields["team"] = team
        if rule is not None:
            # The escalation is the rule's, at its level: recorded as such,
            # the timers do not escalate again by the same rule later.
            fields["rule"] = str(rule["name"])
            fields["level"] = int(rule.get("level", 1))
        return _done(
            "escalate_complex",
            f"escalated to team {team} ({chosen_by})",
            {
                "escalated": True,
                "team": team,
                "rule": None if rule is None else rule.get("name"),
                "chosen_by": chosen_by,
                "reason": reason,
            },
            actions=[TicketAction("escalate", fields)],
        )

    async def step_provide_solution(self) -> WorkflowResult:
        ticket = self.context.ticket
        results = self.context.results
        reopen_count = int(ticket.get("reopen_count") or 0)
        # Answers count from when the diagnostics were in, or, back here
        # after a reopen, from when the reopen was seen: else the answer that
        # was rejected would complete the step again, and again.
        since = _result(results, "collect_diagnostics").get("last_comment_id")
        if self.context.visit > 1:
            reopened = _result(results, "verify_resolution")
            since = reopened.get("last_comment_id", since)
        status = _text(ticket, "status")
        if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            return _done(
                "provide_solution",
                f"the ticket is {status}",
                {
                    "solved_by": status,
                    "solution_comment_id": None,
                    "reopen_count": reopen_count,
                },
            )
        # Only an answer marked as the solution: an agent's question (a plain
        # reply asking for more) does not solve anything.
        answers = [
            c
            for c in _after(_comments(ticket), since)
            if _public_by(c, AGENT_ROLES) and c.get("solution") is True
        ]
        if answers:
            answer = answers[-1]
            return _done(
                "provide_solution",
                f"{answer.get('author_role')} {answer.get('author_id')} posted the"
                " solution",
                {
                    "solved_by": "comment",
                    "solution_comment_id": answer.get("id"),
                    "author_id": answer.get("author_id"),
                    "reopen_count": reopen_count,
                },
            )
        return _waiting(
            "provide_solution",
            "waiting for an agent to resolve the ticket or post a public reply"
            ' marked as the solution ("solution": true)',
            {"after_comment_id": since},
        )

    async def step_verify_resolution(self) -> WorkflowResult:
        ticket = self.context.ticket
        status = _text(ticket, "status")
        if status == TicketStatus.CLOSED:
            return _done(
                "verify_resolution",
                "the ticket was closed",
                {"closed": True, "closed_by": "someone else"},
            )
        if status == TicketStatus.RESOLVED:
            return self._quiet_period(ticket)
        reopen_count = int(ticket.get("reopen_count") or 0)
        # The reopen count when the solution came: a count grown since means
        # the customer reopened. Without it (a person completed the solution
        # step with other data) the step just waits for the next resolution.
        baseline = _number(
            _result(self.context.results, "provide_solution").get("reopen_count")
        )
        if baseline is not None and reopen_count > baseline:
            return _done(
                "verify_resolution",
                "the customer reopened the ticket: back to the solution",
                {
                    "reopened": True,
                    "reopen_count": reopen_count,
                    "last_comment_id": _last_comment_id(ticket),
                    "noticed_at": _iso(self.context.now),
                },
                next_step="provide_solution",
            )
        return _waiting(
            "verify_resolution",
            "waiting for the ticket to be resolved",
            {"waiting_for": "resolution"},
        )

    def _quiet_period(self, ticket: Mapping[str, Any]) -> WorkflowResult:
        hours = _option_number(self.context.options, "auto_close_after_hours", 72.0)
        resolved_at = instant(ticket.get("resolved_at"))
        if resolved_at is None:
            return _waiting(
                "verify_resolution",
                "waiting: the resolution time is unknown, so no auto-close",
                {"resolved_at": None},
            )
        close_at = resolved_at + timedelta(hours=hours)
        if self.context.now >= close_at:
            return _done(
                "verify_resolution",
                f"closed: no reopen within {hours:g} h of the resolution",
                {
                    "closed": True,
                    "resolved_at": _iso(resolved_at),
                    "quiet_hours": hours,
                },
                actions=[TicketAction("close")],
            )
        return _waiting(
            "verify_resolution",
            f"resolved; waiting for the customer, closes at {readable(close_at)}"
            " unless reopened",
            {"resolved_at": _iso(resolved_at), "close_at": _iso(close_at)},
            wake_at=close_at,
        )


def _kind_of(
    question: str, choice: DiagnosticsChoice, options: Mapping[str, Any]
) -> str | None:
    """The kind a question on the ticket was asked as: the kind chosen now
    when its question is that one (a tenant may word kinds alike), else the
    first kind worded so."""
    if choice.question == question:
        return choice.kind
    worded = questions_of(options)
    return next((kind for kind, text in worded.items() if text == question), None)


def _joined(comments: Sequence[Mapping[str, Any]]) -> str:
    return "\n\n".join(_text(c, "body").strip() for c in comments)[:COMMENT_MAX]


# == billing ===========================================================================


class BillingWorkflow(TicketWorkflow):
    """Verify the account, review the history, adjust (with approval), confirm.

    An account the lookup does not find, or finds in a status not listed in
    ``active_account_statuses`` (suspended, closed, ...), is not an error of
    the workflow: it completes ``verify_account`` with ``verified: false``
    and an internal note for the billing team, and goes straight to
    ``confirm_with_customer``, which tells the customer a person will review
    the request. Nothing is adjusted automatically on such an account, and
    the ticket stays open for that person. A lookup that fails (the system
    down, or refusing) is a failed step like every hook's.
    """

    def __init__(self) -> None:
        super().__init__(
            workflow_type="billing",
            steps=[
                WorkflowStep(
                    "verify_account",
                    "Look up the customer's account; an account not active goes"
                    " to a person.",
                    retry=_HOOK_RETRY,
                ),
                WorkflowStep(
                    "review_billing_history",
                    "Read the account's invoices and the disputed amount.",
                    retry=_HOOK_RETRY,
                ),
                WorkflowStep(
                    "calculate_adjustment",
                    "Work out the adjustment: the disputed amount.",
                ),
                WorkflowStep(
                    "approve_adjustment",
                    "Approve a small adjustment automatically; wait for a"
                    " supervisor above the approval limit.",
                    completable_by=_APPROVERS,
                ),
                WorkflowStep(
                    "apply_adjustment",
                    "Apply the approved adjustment in the billing system (once).",
                    retry=_HOOK_RETRY,
                ),
                WorkflowStep(
                    "confirm_with_customer",
                    "Tell the customer the outcome.",
                ),
            ],
        )

    def _currency(self) -> str:
        return _option_text(self.context.options, "currency", "EUR").upper()

    async def step_verify_account(self) -> WorkflowResult:
        ticket = self.context.ticket
        try:
            answer = await self.context.integrations.call(
                ACCOUNT_LOOKUP,
                {
                    "ticket_id": _text(ticket, "id"),
                    "customer_id": ticket.get("customer_id"),
                    "customer_email": ticket.get("customer_email"),
                },
                idempotency_key=self.context.idempotency_key("verify_account"),
            )
        except IntegrationNotConfigured:
            return handed_to_a_person(
                "verify_account",
                ACCOUNT_LOOKUP,
                "look up the customer's account and check that it is active"
                ' (complete with "verified": false when it is not: nothing is'
                " adjusted and the customer is told a person reviews it)",
                {"verified": True, "account_id": "ACC-1", "status": "active"},
            )
        account_id = _text(answer, "account_id")
        # An account that exists and gives no status is taken as active.
        status = _text(answer, "status").casefold() or ("active" if account_id else "")
        allowed = self.context.options.get("active_account_statuses")
        active = (
            [str(s).casefold() for s in allowed]
            if isinstance(allowed, list) and allowed
            else ["active"]
        )
        if not account_id or answer.get("found") is False:
            problem = "the account lookup found no account for this customer"
        elif status not in active:
            problem = f"account {account_id} is {status}"
        else:
            return _done(
                "verify_account",
                f"account {account_id} is {status}",
                {
                    "verified": True,
                    "account_id": account_id,
                    "status": status,
                    "account": answer,
                },
            )
        return _done(
            "verify_account",
            f"not verified: {problem}; a person reviews the request",
            {
                "verified": False,
                "account_id": account_id or None,
                "status": status or None,
                "account": answer,
                "why": problem,
            },
            actions=[
                _comment(
                    f"Billing workflow: {problem}, so no adjustment is made"
                    " automatically. Please review this request.",
                    internal=True,
                )
            ],
            next_step="confirm_with_customer",
        )

    async def step_review_billing_history(self) -> WorkflowResult:
        ticket = self.context.ticket
        account = _result(self.context.results, "verify_account")
        account_id = _text(account, "account_id")
        currency = self._currency()
        if account.get("verified") is False:
            # A person found the account not active (the lookup's own verdict
            # jumps straight to the confirmation): nothing to review.
            return _done(
                "review_billing_history",
                "not reviewed: the account is not verified",
                {"account_id": account_id or None, "reviewed": False},
                next_step="confirm_with_customer",
            )
        try:
            answer = await self.context.integrations.call(
                BILLING_HISTORY,
                {
                    "ticket_id": _text(ticket, "id"),
                    "account_id": account_id,
                    "customer_id": ticket.get("customer_id"),
                },
                idempotency_key=self.context.idempotency_key("review_billing_history"),
            )
        except IntegrationNotConfigured:
            return handed_to_a_person(
                "review_billing_history",
                BILLING_HISTORY,
                "read the account's invoices and work out the amount the"
                " customer disputes (0 when nothing is due)",
                {"disputed_amount": 0.0, "currency": currency},
            )
        invoices = [i for i in answer.get("invoices") or [] if isinstance(i, Mapping)]
        counted: list[Any] = []
        ignored: list[dict[str, Any]] = []
        total = Decimal(0)
        for invoice in invoices:
            if invoice.get("disputed") is not True:
                continue
            amount = _money(invoice.get("amount"))
            invoice_currency = _text(invoice, "currency").upper() or currency
            if amount is None:
                ignored.append({"id": invoice.get("id"), "why": "no amount"})
            elif invoice_currency != currency:
                ignored.append(
                    {"id": invoice.get("id"), "why": f"in {invoice_currency}"}
                )
            else:
                counted.append(invoice.get("id"))
                total += amount
        if counted:
            source = "invoices"
            why = f"disputed invoices {', '.join(map(str, counted))}"
        else:
            field = (ticket.get("custom_fields") or {}).get("disputed_amount")
            from_field = _money(field)
            if from_field is not None:
                total, source = from_field, "custom_field"
                why = "the ticket's disputed_amount field (no invoice is disputed)"
            else:
                source, why = "none", "no invoice is disputed and no amount is given"
        data = {
            "account_id": account_id,
            "invoices": invoices,
            "disputed_invoices": counted,
            "ignored_invoices": ignored,
            "disputed_amount": float(total),
            "currency": currency,
            "source": source,
            "why": why,
        }
        return _done(
            "review_billing_history",
            f"{len(invoices)} invoice(s); disputed {_shown(total, currency)} ({why})",
            data,
        )

    async def step_calculate_adjustment(self) -> WorkflowResult:
        history = _result(self.context.results, "review_billing_history")
        currency = _text(history, "currency") or self._currency()
        amount = max(_money(history.get("disputed_amount")) or Decimal(0), Decimal(0))
        if amount == 0:
            why = _text(history, "why") or "no billing history was reviewed"
            return _done(
                "calculate_adjustment",
                f"no adjustment due ({why}); confirming with the customer",
                {"amount": 0.0, "currency": currency, "why": why},
                next_step="confirm_with_customer",
            )
        return _done(
            "calculate_adjustment",
            f"adjustment of {_shown(amount, currency)}",
            {
                "amount": float(amount),
                "currency": currency,
                "why": "credit the disputed amount ("
                + (_text(history, "why") or "as a person reviewed it")
                + ")",
            },
        )

    async def step_approve_adjustment(self) -> WorkflowResult:
        adjustment = _result(self.context.results, "calculate_adjustment")
        amount = _money(adjustment.get("amount")) or Decimal(0)
        currency = _text(adjustment, "currency") or self._currency()
        limit = _option_number(self.context.options, "approval_above", 100.0)
        shown, shown_limit = _shown(amount, currency), _shown(limit, currency)
        if amount <= Decimal(str(limit)):
            return _done(
                "approve_adjustment",
                f"approved automatically: {shown} is within {shown_limit}",
                {
                    "approved": True,
                    "approved_by": "automatic",
                    "amount": float(amount),
                    "currency": currency,
                    "approval_above": limit,
                    "why": f"{shown} is not above the approval limit {shown_limit}",
                },
            )
        # A supervisor completes this step through the API with
        # {"approved": true} (or false); until then every run waits alike.
        return _waiting(
            "approve_adjustment",
            f"a supervisor must approve an adjustment of {shown}",
            {"amount": float(amount), "currency": currency, "approval_above": limit},
        )

    async def step_apply_adjustment(self) -> WorkflowResult:
        ticket = self.context.ticket
        results = self.context.results
        approval = _result(results, "approve_adjustment")
        adjustment = _result(results, "calculate_adjustment")
        amount = _money(adjustment.get("amount")) or Decimal(0)
        currency = _text(adjustment, "currency") or self._currency()
        if approval.get("approved") is not True:
            return _done(
                "apply_adjustment",
                f"not applied: the adjustment of {_shown(amount, currency)} was not"
                " approved",
                {
                    "applied": False,
                    "amount": float(amount),
                    "currency": currency,
                    "why": "the approval step did not approve it",
                },
            )
        account_id = _text(_result(results, "verify_account"), "account_id")
        # The idempotency key is this visit's: a retry after a timeout or a
        # crash asks again with the same key, and the billing system applies
        # the adjustment once.
        try:
            answer = await self.context.integrations.call(
                APPLY_ADJUSTMENT,
                {
                    "ticket_id": _text(ticket, "id"),
                    "ticket_number": ticket.get("number"),
                    "account_id": account_id,
                    "amount": float(amount),
                    "currency": currency,
                },
                idempotency_key=self.context.idempotency_key("apply_adjustment"),
            )
        except IntegrationNotConfigured:
            return handed_to_a_person(
                "apply_adjustment",
                APPLY_ADJUSTMENT,
                f"apply the approved adjustment of {_shown(amount, currency)} to"
                f" account {account_id or '(see verify_account)'} in the billing"
                " system",
                {"applied": True, "reference": "ADJ-1"},
            )
        return _done(
            "apply_adjustment",
            f"applied {_shown(amount, currency)} to account {account_id}",
            {
                "applied": True,
                "account_id": account_id,
                "amount": float(amount),
                "currency": currency,
                "confirmation": answer,
            },
        )

    async def step_confirm_with_customer(self) -> WorkflowResult:
        results = self.context.results
        account = _result(results, "verify_account")
        applied = results.get("apply_adjustment")
        if account.get("verified") is False:
            outcome = "account_not_verified"
            body = (
                "We could not match your request to an active account, so we"
                " cannot make an adjustment automatically. Our billing team"
                " will review your request and get back to you."
            )
        elif applied is not None and applied.get("applied") is True:
            outcome = "applied"
            # A person who applied it by hand may give only a reference:
            # the amount is the one calculated and approved.
            calculated = _result(results, "calculate_adjustment")
            shown = _shown(
                _money(applied.get("amount"))
                or _money(calculated.get("amount"))
                or Decimal(0),
                _text(applied, "currency")
                or _text(calculated, "currency")
                or self._currency(),
            )
            # The billing system's answer, or what a person completed with.
            confirmation = applied.get("confirmation") or applied
            reference = next(
                (
                    str(confirmation[key])
                    for key in ("reference", "adjustment_id", "id")
                    if isinstance(confirmation, Mapping) and confirmation.get(key)
                ),
                None,
            )
            body = (
                f"We have reviewed your billing history and applied an"
                f" adjustment of {shown} to your account"
                + (f" (reference {reference})" if reference else "")
                + "."
            )
        elif applied is not None:
            outcome = "not_approved"
            body = (
                "We have reviewed your request and will not apply an adjustment"
                " at this time. An agent will follow up with the details."
            )
        else:
            outcome = "no_adjustment"
            body = (
                "We have reviewed your billing history and found no disputed"
                " amount, so no adjustment is due. If you think we missed"
                " something, reply to this ticket with the invoice number and"
                " the amount in question."
            )
        return _done(
            "confirm_with_customer",
            f"told the customer: {outcome.replace('_', ' ')}",
            {"outcome": outcome, "body": body},
            actions=[_comment(body)],
        )


#: The workflows every registry starts with (``service.workflows.registry_with``).
BUILTIN_WORKFLOWS: tuple[type[TicketWorkflow], ...] = (
    CustomerSupportWorkflow,
    TechnicalSupportWorkflow,
    BillingWorkflow,
)

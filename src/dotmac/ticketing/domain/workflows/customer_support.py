"""The customer-support workflow (see ``domain.builtin_workflows``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from dotmac.ticketing.domain.acknowledgment import instant, readable, reply_promise
from dotmac.ticketing.domain.categorization import categorize
from dotmac.ticketing.domain.enums import TicketCategory
from dotmac.ticketing.domain.sla import FIRST_RESPONSE
from dotmac.ticketing.domain.workflow import (
    TicketAction,
    TicketWorkflow,
    WorkflowResult,
    WorkflowStep,
)
from dotmac.ticketing.domain.workflows.common import (
    _GENERIC_TITLES,
    _comment,
    _done,
    _iso,
    _option_number,
    _text,
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
        rules = self.context.config.categorization_rules
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

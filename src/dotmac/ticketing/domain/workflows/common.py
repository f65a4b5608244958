"""What the built-in workflows share: hook names, retries, results, ticket readings."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.workflow import (
    RetryPolicy,
    TicketAction,
    WorkflowResult,
)

#: The hooks these workflows call: the names of
#: ``consumers.workflows.integrations`` (the domain may not import it), and
#: a tenant's ``integrations`` keys.
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

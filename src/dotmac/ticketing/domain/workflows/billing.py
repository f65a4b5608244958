"""The billing workflow (see ``domain.builtin_workflows``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from dotmac.ticketing.domain.workflow import (
    IntegrationNotConfigured,
    TicketWorkflow,
    WorkflowResult,
    WorkflowStep,
    handed_to_a_person,
)
from dotmac.ticketing.domain.workflows.common import (
    _APPROVERS,
    _HOOK_RETRY,
    ACCOUNT_LOOKUP,
    APPLY_ADJUSTMENT,
    BILLING_HISTORY,
    _comment,
    _done,
    _money,
    _option_number,
    _option_text,
    _result,
    _shown,
    _text,
    _waiting,
)

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

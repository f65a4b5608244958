"""What a customer's answer does to a ticket that waits on someone (pure).

A ticket is put ``pending`` while the desk waits on the customer (its
resolution clock pauses), or ``on_hold`` while it waits on someone else.
When the customer answers (a public comment or an attachment) the wait is
over: the ticket goes back to ``open`` and the paused clocks run again, so
the SLA does not stop counting for good while nobody looks. Each tenant
chooses which of the two states an answer ends, in the ``customer_replies``
section of its configuration.

An answer on a ``resolved`` ticket says the problem is not gone: within
``reopen_resolved_within_days`` of the resolution it reopens the ticket
(as the resolution e-mail promises); after that, and on a ``closed``
ticket (closed is final), it opens a follow-up ticket linked to the old one
(:meth:`CustomerReplyPolicy.needs_follow_up`), as Zendesk and Zammad do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dotmac.ticketing.domain.enums import TicketStatus
from dotmac.ticketing.domain.provenance import Actor
from dotmac.ticketing.domain.tenant_config import TenantConfig

#: The automation recorded on the status change a customer's answer causes.
CUSTOMER_REPLY = "customer-reply"

#: Where an answer moves a waiting ticket.
STATUS_AFTER_ANSWER = TicketStatus.OPEN


@dataclass(frozen=True)
class CustomerReplyPolicy:
    """Which waiting states a customer's answer ends (a tenant's choice)."""

    reopen_pending: bool = True
    reopen_on_hold: bool = False
    reopen_resolved: bool = True
    reopen_resolved_within_days: int = 7

    @classmethod
    def from_config(cls, config: TenantConfig) -> CustomerReplyPolicy:
        """The policy of a tenant's configuration (defaults where it is silent)."""
        section = config.customer_replies
        return cls(
            reopen_pending=section.reopen_pending,
            reopen_on_hold=section.reopen_on_hold,
            reopen_resolved=section.reopen_resolved,
            reopen_resolved_within_days=section.reopen_resolved_within_days,
        )

    def status_after_answer(self, status: TicketStatus) -> TicketStatus | None:
        """The status an answer moves a ticket in ``status`` to; None: stays."""
        ends_wait = (status == TicketStatus.PENDING and self.reopen_pending) or (
            status == TicketStatus.ON_HOLD and self.reopen_on_hold
        )
        return STATUS_AFTER_ANSWER if ends_wait else None

    def reopens(self, resolved_at: datetime | None, at: datetime) -> bool:
        """Whether an answer at ``at`` reopens a ticket resolved at ``resolved_at``."""
        return self.reopen_resolved and (
            resolved_at is None
            or at - resolved_at <= timedelta(days=self.reopen_resolved_within_days)
        )

    def needs_follow_up(
        self, status: TicketStatus, resolved_at: datetime | None, at: datetime
    ) -> bool:
        """Whether an answer at ``at`` belongs on a new ticket, not this one."""
        if status == TicketStatus.CLOSED:
            return True
        return (
            status == TicketStatus.RESOLVED
            and self.reopen_resolved
            and not self.reopens(resolved_at, at)
        )


#: A tenant that configured nothing: an answer ends a wait on the customer.
DEFAULT_REPLY_POLICY = CustomerReplyPolicy()


def is_customer_answer(actor: Actor, customer_id: str) -> bool:
    """Whether ``actor`` is the ticket's customer speaking as themself.

    Staff writing on the customer's behalf, automations and other customers
    (who cannot see the ticket anyway) do not end a wait.
    """
    return actor.kind == "user" and actor.role == "customer" and actor.id == customer_id

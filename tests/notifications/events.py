"""CloudEvents of the ticket topic, built by hand for the notifier's tests.

The shape is the relay's (``consumers/kafka/cloudevents.py``): ``id`` =
``<ticket id>:<version>``, ``type`` = ``ticketing.ticket.<name>.v1``,
``subject`` = ticket id, extension ``tenantid``, ``data`` = the event's
fields plus provenance, ticket id and version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

AGENT = {"id": "agent-1", "role": "agent", "kind": "user"}


def customer_actor(customer_id: str = "cust-1") -> dict[str, str]:
    return {"id": customer_id, "role": "customer", "kind": "user"}


def agent_actor(agent_id: str = "agent-1") -> dict[str, str]:
    return {"id": agent_id, "role": "agent", "kind": "user"}


def cloud_event(
    name: str,
    *,
    ticket_id: str,
    version: int,
    tenant_id: str = "acme",
    actor: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    data = {
        **fields,
        "tenant_id": tenant_id,
        "actor": actor or AGENT,
        "correlation_id": None,
        "causation_id": None,
        "ticket_id": ticket_id,
        "version": version,
    }
    return {
        "specversion": "1.0",
        "id": f"{ticket_id}:{version}",
        "source": "/ticketing",
        "type": f"ticketing.ticket.{name}.v1",
        "subject": ticket_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "tenantid": tenant_id,
        "data": data,
    }


class TicketStory:
    """One ticket's events in order, each with the next version."""

    def __init__(
        self,
        *,
        tenant_id: str = "acme",
        customer_id: str = "cust-1",
        customer_email: str | None = "cust-1@example.test",
        number: int = 7,
        title: str = "Printer on fire",
    ) -> None:
        self.ticket_id = str(uuid4())
        self.tenant_id = tenant_id
        self.customer_id = customer_id
        self.version = 0
        self.created = self.next(
            "ticket_created",
            actor=customer_actor(customer_id),
            number=number,
            title=title,
            description="It is on fire.",
            category="technical_support",
            priority="high",
            channel="web",
            customer_id=customer_id,
            customer_email=customer_email,
            tags=[],
            custom_fields={},
        )

    def next(self, name: str, **fields: Any) -> dict[str, Any]:
        self.version += 1
        return cloud_event(
            name,
            ticket_id=self.ticket_id,
            version=self.version,
            tenant_id=self.tenant_id,
            **fields,
        )

    def assigned(self, assignee: str | None, team: str | None = None, **kw: Any):
        return self.next(
            "ticket_assigned",
            assignee_id=assignee,
            team=team,
            previous_assignee_id=kw.pop("previous_assignee_id", None),
            previous_team=kw.pop("previous_team", None),
            status="open",
            **kw,
        )

    def commented(self, body: str, *, internal: bool = False, actor=None):
        return self.next(
            "comment_added",
            actor=actor or agent_actor(),
            comment_id=uuid4().hex,
            body=body,
            internal=internal,
            is_first_response=False,
        )

    def escalated(self, team: str, *, assignee: str | None = None, level: int = 1):
        return self.next(
            "ticket_escalated",
            level=level,
            team=team,
            reason="Needs engineering",
            assignee_id=assignee,
        )

    def resolved(self, note: str = "Replaced the fuser."):
        return self.next("ticket_resolved", resolution_code="fixed", resolution=note)

    def merged(
        self,
        into_ticket_id: str,
        *,
        into_number: int | None = None,
        into_assignee_id: str | None = None,
        cross_customer: bool = False,
        actor: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """This ticket merged into another (without into_number: as stored
        before that field existed, when the event had into_ticket_id only)."""
        fields: dict[str, Any] = {"into_ticket_id": into_ticket_id}
        if into_number is not None:
            fields |= {
                "into_number": into_number,
                "into_assignee_id": into_assignee_id,
                "cross_customer": cross_customer,
            }
        return self.next("ticket_merged", actor=actor or agent_actor(), **fields)

"""A privacy request as an event: who asked for an erasure or an export, when.

Recorded for every erasure (asked for, or by a tenant's retention period)
and every export, with ids and counts only: the record of an erasure must
not hold what it erased.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

_TOPIC = "ticketing.privacy"

KINDS = ("erasure", "export")
REASONS = ("request", "retention")


class PrivacyRequest(Aggregate):
    """One erasure or export; its id is the request's."""

    TOPIC = f"{_TOPIC}:PrivacyRequest"

    class Created(Aggregate.Created):
        """The request was made (and, for an erasure, carried out)."""

        TOPIC = f"{_TOPIC}:PrivacyRequest.Recorded.v1"
        tenant_id: str
        kind: str
        subject_id: str
        ticket_id: str | None
        reason: str
        requested_by: dict[str, str]
        receipt: dict[str, Any]

    def __init__(
        self,
        tenant_id: str,
        kind: str,
        subject_id: str,
        ticket_id: str | None,
        reason: str,
        requested_by: dict[str, str],
        receipt: dict[str, Any],
    ) -> None:
        self.tenant_id = tenant_id
        self.kind = kind
        self.subject_id = subject_id
        self.ticket_id = ticket_id
        self.reason = reason
        self.requested_by = requested_by
        self.receipt = receipt

    @classmethod
    def record(
        cls,
        request_id: UUID,
        *,
        tenant_id: str,
        kind: str,
        subject_id: str,
        reason: str,
        requested_by: dict[str, str],
        receipt: dict[str, Any],
        ticket_id: str | None = None,
    ) -> PrivacyRequest:
        if kind not in KINDS or reason not in REASONS:
            raise ValueError(f"not a privacy request: {kind} by {reason}")
        request: PrivacyRequest = cls._create(
            cls.Created,
            id=request_id,
            tenant_id=tenant_id,
            kind=kind,
            subject_id=subject_id,
            ticket_id=ticket_id,
            reason=reason,
            requested_by=dict(requested_by),
            receipt=dict(receipt),
        )
        return request

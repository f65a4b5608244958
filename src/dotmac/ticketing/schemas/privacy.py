"""Privacy requests over HTTP: erasure receipts and the record of requests."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class ErasureReceipt(BaseModel):
    """What an erasure did. Ids and counts only: never the erased data."""

    request_id: UUID = Field(
        description="The request, as listed at GET /privacy/requests."
    )
    subject_id: str = Field(description="The customer whose data was erased.")
    reason: Literal["request", "retention"]
    erased_at: datetime
    tickets: list[UUID] = Field(
        description="The tickets erased by this request (each has a SubjectErased"
        " event). Empty when everything was erased before (`already_erased`)."
    )
    keys_destroyed: int = Field(
        description="Keys destroyed: every event, snapshot and file they sealed"
        " now reads as erased."
    )
    attachments_deleted: int
    addresses_suppressed: int = Field(
        description="Addresses nothing will be sent to again (kept as digests)."
    )
    rows_scrubbed: dict[str, int] = Field(
        description="Rows cleared outside the event store, by table (in-app"
        " notifications, deliveries, inbound mail, bounces, the notifier's view)."
    )
    already_erased: bool = Field(
        description="Nothing was left to erase: an earlier request did it."
    )
    position: int | None = Field(
        description="The event-store position of the last SubjectErased event:"
        " the read models are blank once their projections reach it."
    )


class PrivacyRequestRead(BaseModel):
    """One erasure or export: who asked, when, and what was done."""

    request_id: UUID
    kind: Literal["erasure", "export"]
    subject_id: str
    ticket_id: UUID | None = Field(
        description="For an erasure of one ticket (retention): that ticket."
    )
    reason: Literal["request", "retention"]
    requested_by: dict[str, str] = Field(
        description="Who asked: the admin's id and role, or the retention automation."
    )
    requested_at: datetime
    receipt: dict[str, object] = Field(
        description="An erasure's receipt; an export's count of tickets."
    )

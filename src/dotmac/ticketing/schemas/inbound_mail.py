"""Inbound e-mail over HTTP: what a message became, dead letters, bounces."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

Outcome = Literal[
    "ticket", "comment", "follow-up", "ignored", "bounce", "held", "dead-letter"
]


class InboundReceipt(BaseModel):
    """What ``POST /inbound/email`` made of the message."""

    outcome: Outcome = Field(
        description="ticket: a new ticket; comment: a comment on the ticket it"
        " answers; follow-up: a comment on a new ticket following up a closed"
        " one; ignored: machine mail (auto-reply, list, our own); bounce: a"
        " delivery failure, the address stops getting mail; held: the sender"
        " is over the tenant's pace, taken later; dead-letter: it could not be"
        " read (see reason), kept for the admins."
    )
    message_key: str = Field(
        description="What names the message: the same message again gets the"
        " same answer (replayed) and changes nothing."
    )
    ticket_id: UUID | None = None
    ticket_number: int | None = None
    comment_id: str | None = None
    reason: str | None = None
    replayed: bool = Field(
        default=False, description="The message was taken before; nothing changed."
    )


class DeadLetterRead(BaseModel):
    message_key: str
    source: str = Field(description='"endpoint" or "imap:<mailbox name>".')
    sender: str | None
    subject: str | None
    reason: str | None
    size: int = Field(description="The message's size in bytes.")
    received_at: datetime


class BounceRead(BaseModel):
    address: str
    status: str | None = Field(description='The DSN status, e.g. "5.1.1".')
    diagnostic: str | None
    ticket_id: UUID | None = Field(description="The ticket whose mail bounced.")
    bounces: int
    first_at: datetime
    last_at: datetime

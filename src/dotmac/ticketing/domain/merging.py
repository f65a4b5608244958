"""What a merge carries over, and when a merge needs a confirmation (pure).

Merging folds a duplicate (the source) into the ticket the desk keeps
working (the target), as Zendesk does: the source closes as merged, both
tickets link to each other, and the target receives the source's
description, comments and attachment list as comments that quote them
with author and time, so nothing the customer or the desk wrote is lost.

Public text stays public and internal notes stay internal, unless the two
tickets belong to different customers: then everything carried is an
internal note, because the target's customer must never read the other
customer's request. A merge across customers is refused unless the request
confirms it, or always when the tenant's ``merges.cross_customer`` setting
is ``refuse``.

Pure: the standard library and other domain modules only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dotmac.ticketing.domain.acknowledgment import instant, readable
from dotmac.ticketing.domain.errors import CommandRefused
from dotmac.ticketing.domain.limits import COMMENT_MAX
from dotmac.ticketing.domain.tenant_config import TenantConfig

#: The automation recorded on the comments a merge carries to the target.
TICKET_MERGE = "ticket-merge"

#: ``merges.cross_customer``: a merge across customers needs the request's
#: confirmation, or is never allowed.
CONFIRM = "confirm"
REFUSE = "refuse"


class CrossCustomerMerge(CommandRefused):
    """The two tickets belong to different customers (HTTP 409).

    ``confirmable``: the request may go ahead with ``confirm_cross_customer``;
    False when the tenant refuses such merges altogether.
    """

    def __init__(
        self,
        status: str,
        *,
        source_customer_id: str,
        target_customer_id: str,
        confirmable: bool,
    ) -> None:
        self.source_customer_id = source_customer_id
        self.target_customer_id = target_customer_id
        self.confirmable = confirmable
        reason = (
            "the tickets belong to different customers; send"
            ' "confirm_cross_customer": true to merge them anyway'
            if confirmable
            else "the tickets belong to different customers, and this tenant"
            " does not merge across customers (settings merges.cross_customer)"
        )
        super().__init__("merge", status, reason)


@dataclass(frozen=True)
class MergePolicy:
    """A tenant's choice about merges across customers (``merges`` section)."""

    cross_customer: str = CONFIRM

    @classmethod
    def from_config(cls, config: TenantConfig) -> MergePolicy:
        return cls(cross_customer=config.merges.cross_customer)

    def check(
        self,
        *,
        source_customer_id: str,
        target_customer_id: str,
        confirmed: bool,
        status: str,
    ) -> bool:
        """Whether the merge crosses customers; raise when that is not allowed."""
        if source_customer_id == target_customer_id:
            return False
        confirmable = self.cross_customer != REFUSE
        if not (confirmable and confirmed):
            raise CrossCustomerMerge(
                status,
                source_customer_id=source_customer_id,
                target_customer_id=target_customer_id,
                confirmable=confirmable,
            )
        return True


@dataclass(frozen=True)
class CarriedComment:
    """One comment the target receives: its text and whether it is internal."""

    body: str
    internal: bool


@dataclass(frozen=True)
class MergedSource:
    """What the target receives from the source, as plain values."""

    number: int
    title: str
    description: str
    opened_at: Any
    opened_by: Mapping[str, str]
    comments: Sequence[Mapping[str, Any]]
    attachments: Sequence[Mapping[str, Any]]


def carried_comments(
    source: MergedSource, *, cross_customer: bool
) -> list[CarriedComment]:
    """The comments the target receives, public one first; none if empty.

    The public comment quotes the description, the public comments and
    lists the attachments; the internal note quotes the internal notes.
    Across customers, all of it is one internal note.
    """
    description = (
        [_quote("Description", source.opened_by, source.opened_at, source.description)]
        if source.description.strip()
        else []
    )
    public = [
        _quote("Comment", _author(c), c.get("created_at"), str(c["body"]))
        for c in source.comments
        if not c.get("internal")
    ]
    internal = [
        _quote("Internal note", _author(c), c.get("created_at"), str(c["body"]))
        for c in source.comments
        if c.get("internal")
    ]
    files = _attachments(source)
    name = f'#{source.number} "{source.title}"'
    if cross_customer:
        parts = description + public + internal + files
        heading = (
            f"Merged from ticket {name}, which belongs to another customer: carried"
            " as an internal note, so that neither customer sees the other's request."
        )
        return [CarriedComment(_body(heading, parts, source.number), internal=True)]
    carried = []
    if description or public or files:
        heading = f"Merged from request {name}:"
        body = _body(heading, description + public + files, source.number)
        carried.append(CarriedComment(body, internal=False))
    if internal:
        heading = f"Internal notes merged from ticket {name}:"
        carried.append(CarriedComment(_body(heading, internal, source.number), True))
    return carried


def _author(comment: Mapping[str, Any]) -> Mapping[str, str]:
    return {"id": comment.get("author_id", "?"), "role": comment.get("author_role", "")}


def _quote(what: str, author: Mapping[str, str], at: Any, text: str) -> str:
    moment = instant(at)
    when = f" at {readable(moment)}" if moment is not None else ""
    who = author.get("id", "?")
    role = author.get("role")
    by = f"{who} ({role})" if role else who
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    return f"{what} by {by}{when}:\n{quoted or '>'}"


def _attachments(source: MergedSource) -> list[str]:
    if not source.attachments:
        return []
    lines = [
        f"- {a['filename']} ({a['size']} bytes, {a['content_type']}), id {a['id']}"
        for a in source.attachments
    ]
    return [f"Attachments (kept on #{source.number}):\n" + "\n".join(lines)]


def _body(heading: str, parts: list[str], number: int) -> str:
    """The heading and parts, cut to a comment's limit with a word saying so."""
    body = "\n\n".join([heading, *parts])
    if len(body) <= COMMENT_MAX:
        return body
    cut = f"\n\n[… cut to fit one comment: the full text is on #{number}]"
    return body[: COMMENT_MAX - len(cut)].rstrip() + cut

"""The ticket state machine as data, so it can be read, tested and shown.

Active states move freely among themselves (never back to ``new``);
resolve works from any active state; reopen takes a resolved ticket back to
open; close works from resolved (a merge closes from any state); closed is
final.
"""

from enum import StrEnum

from dotmac.ticketing.domain.enums import ACTIVE_STATUSES, TicketStatus
from dotmac.ticketing.domain.errors import CommandRefused


class Command(StrEnum):
    UPDATE = "update"
    CATEGORIZE = "categorize"
    CHANGE_PRIORITY = "change_priority"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    CHANGE_STATUS = "change_status"
    COMMENT = "comment"
    ATTACH = "attach"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"
    MERGE = "merge"
    LINK = "link"
    RATE = "rate"
    LOG_TIME = "log_time"


_ACTIVE_OR_RESOLVED = ACTIVE_STATUSES | {TicketStatus.RESOLVED}

# Conversation (comments, files, links) goes on after a resolution: a
# customer's "thanks, that worked" must not need a reopen. Changing the
# work itself (fields, assignment, escalation) needs the ticket reopened.
ALLOWED_FROM: dict[Command, frozenset[TicketStatus]] = {
    Command.UPDATE: ACTIVE_STATUSES,
    Command.CATEGORIZE: ACTIVE_STATUSES,
    Command.CHANGE_PRIORITY: ACTIVE_STATUSES,
    Command.ASSIGN: ACTIVE_STATUSES,
    Command.UNASSIGN: ACTIVE_STATUSES,
    Command.CHANGE_STATUS: ACTIVE_STATUSES,
    Command.COMMENT: _ACTIVE_OR_RESOLVED,
    Command.ATTACH: _ACTIVE_OR_RESOLVED,
    Command.ESCALATE: ACTIVE_STATUSES,
    Command.RESOLVE: ACTIVE_STATUSES,
    Command.REOPEN: frozenset({TicketStatus.RESOLVED}),
    Command.CLOSE: frozenset({TicketStatus.RESOLVED}),
    Command.MERGE: _ACTIVE_OR_RESOLVED,
    Command.LINK: _ACTIVE_OR_RESOLVED,
    # The customer rates the outcome while the ticket is resolved.
    Command.RATE: frozenset({TicketStatus.RESOLVED}),
    # Time is logged (and corrected) while there is work or talk on the
    # ticket, like the conversation; closed is final for it too.
    Command.LOG_TIME: _ACTIVE_OR_RESOLVED,
}

# Where an agent may move a ticket with a plain status change.
STATUS_CHANGE_TARGETS = ACTIVE_STATUSES - {TicketStatus.NEW}


def is_allowed(command: Command, status: TicketStatus) -> bool:
    return status in ALLOWED_FROM[command]


def ensure_allowed(command: Command, status: TicketStatus) -> None:
    """Raise :class:`CommandRefused` naming the command and the state."""
    if not is_allowed(command, status):
        reason = "closed tickets are final" if status == TicketStatus.CLOSED else ""
        raise CommandRefused(command.value, status.value, reason)


def ensure_status_change(current: TicketStatus, target: TicketStatus) -> bool:
    """Check a plain status change; return False when it changes nothing.

    Setting the current state again is a no-op rather than an error, so that
    retried requests and idempotent automations stay harmless.
    """
    ensure_allowed(Command.CHANGE_STATUS, current)
    if target == current:
        return False
    if target not in STATUS_CHANGE_TARGETS:
        hint = {
            TicketStatus.NEW: "a ticket never goes back to new",
            TicketStatus.RESOLVED: "use resolve",
            TicketStatus.CLOSED: "use close",
        }[target]
        raise CommandRefused(
            f"{Command.CHANGE_STATUS.value} to {target.value}", current.value, hint
        )
    return True


def status_after_assignment(current: TicketStatus) -> TicketStatus:
    """Assigning a new ticket opens it; other states are kept."""
    return TicketStatus.OPEN if current == TicketStatus.NEW else current

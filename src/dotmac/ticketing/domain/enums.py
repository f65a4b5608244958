"""The vocabulary of a ticket: statuses, priorities, categories, channels.

Values are lower snake case because they travel unchanged into JSON, SQL
and Kafka messages.
"""

from enum import StrEnum


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


ACTIVE_STATUSES = frozenset(
    {
        TicketStatus.NEW,
        TicketStatus.OPEN,
        TicketStatus.IN_PROGRESS,
        TicketStatus.PENDING,
        TicketStatus.ON_HOLD,
    }
)


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position from least to most pressing, for sorting."""
        return list(TicketPriority).index(self)


class TicketCategory(StrEnum):
    TECHNICAL_SUPPORT = "technical_support"
    BILLING = "billing"
    ACCOUNT = "account"
    SERVICE_REQUEST = "service_request"
    COMPLAINT = "complaint"
    GENERAL = "general"


class TicketChannel(StrEnum):
    WEB = "web"
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    API = "api"


class LinkRelation(StrEnum):
    RELATES_TO = "relates_to"
    DUPLICATES = "duplicates"
    DUPLICATED_BY = "duplicated_by"
    BLOCKS = "blocks"
    BLOCKED_BY = "blocked_by"
    MERGED_FROM = "merged_from"
    MERGED_INTO = "merged_into"
    #: A customer wrote on a ticket that was done: a new one carries it on.
    FOLLOW_UP_OF = "follow_up_of"
    FOLLOWED_UP_BY = "followed_up_by"

    @property
    def inverse(self) -> "LinkRelation":
        """The relation as seen from the other ticket."""
        return _INVERSE_RELATIONS.get(self, self)


class TimeEntryType(StrEnum):
    """What the time of a time entry was spent on."""

    SUPPORT = "support"
    INVESTIGATION = "investigation"
    DEVELOPMENT = "development"
    ONSITE = "onsite"
    TRAVEL = "travel"
    OTHER = "other"


_INVERSE_RELATIONS = {
    LinkRelation.DUPLICATES: LinkRelation.DUPLICATED_BY,
    LinkRelation.DUPLICATED_BY: LinkRelation.DUPLICATES,
    LinkRelation.BLOCKS: LinkRelation.BLOCKED_BY,
    LinkRelation.BLOCKED_BY: LinkRelation.BLOCKS,
    LinkRelation.MERGED_FROM: LinkRelation.MERGED_INTO,
    LinkRelation.MERGED_INTO: LinkRelation.MERGED_FROM,
    LinkRelation.FOLLOW_UP_OF: LinkRelation.FOLLOWED_UP_BY,
    LinkRelation.FOLLOWED_UP_BY: LinkRelation.FOLLOW_UP_OF,
}

"""The enumerations of the public contract.

They are the domain's own vocabulary, re-exported: one list of values,
used unchanged in JSON, SQL and Kafka messages. ``domain.enums`` imports
only the standard library, so this contract package stays free of I/O.
"""

from dotmac.ticketing.domain.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TimeEntryType,
)

__all__ = [
    "LinkRelation",
    "TicketCategory",
    "TicketChannel",
    "TicketPriority",
    "TicketStatus",
    "TimeEntryType",
]

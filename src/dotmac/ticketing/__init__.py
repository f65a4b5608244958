"""dotmac-ticketing: a multi-tenant, event-sourced support-ticketing service.

The names a host application embeds (the original product's Quick Start)::

    from dotmac.ticketing import (
        TicketManager, TicketService, initialize_ticketing,
        TicketCreate, TicketCategory, TicketPriority,
    )
    from dotmac.ticketing.api import create_ticket_router
    from dotmac.ticketing.workflows import TicketWorkflow, WorkflowResult

They load on first use, so importing one layer (``dotmac.ticketing.domain``,
say) does not pull in the web framework and the database drivers; type
checkers see them through the modules that define them
(``dotmac.ticketing.embedding``, ``dotmac.ticketing.schemas``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TicketManager": "dotmac.ticketing.embedding",
    "TicketService": "dotmac.ticketing.embedding",
    "initialize_ticketing": "dotmac.ticketing.embedding",
    "TicketCategory": "dotmac.ticketing.schemas",
    "TicketChannel": "dotmac.ticketing.schemas",
    "TicketCreate": "dotmac.ticketing.schemas",
    "TicketPriority": "dotmac.ticketing.schemas",
    "TicketRead": "dotmac.ticketing.schemas",
    "TicketStatus": "dotmac.ticketing.schemas",
    "TicketUpdate": "dotmac.ticketing.schemas",
}

__all__ = [
    "TicketCategory",
    "TicketChannel",
    "TicketCreate",
    "TicketManager",
    "TicketPriority",
    "TicketRead",
    "TicketService",
    "TicketStatus",
    "TicketUpdate",
    "initialize_ticketing",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dotmac.ticketing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

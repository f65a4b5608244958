"""The application layer: use cases, configuration, HTTP API and CLI."""

from dotmac.ticketing.service.api.host_routes import create_ticket_router
from dotmac.ticketing.service.api.problems import install_problem_handlers
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tickets import CommandResult, TicketService

__all__ = [
    "CommandResult",
    "RequestContext",
    "TicketService",
    "Ticketing",
    "create_ticket_router",
    "initialize_ticketing",
    "install_problem_handlers",
]

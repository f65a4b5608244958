"""The application layer: use cases, configuration, HTTP API and CLI."""

from service.api.problems import install_problem_handlers
from service.api.tickets import create_ticket_router
from service.bootstrap import Ticketing, initialize_ticketing
from service.context import RequestContext
from service.tickets import CommandResult, TicketService

__all__ = [
    "CommandResult",
    "RequestContext",
    "TicketService",
    "Ticketing",
    "create_ticket_router",
    "initialize_ticketing",
    "install_problem_handlers",
]

"""Custom workflows (``dotmac.ticketing.workflows``): subclass ``TicketWorkflow``.

Register a subclass under the entry point group ``dotmac_ticketing.workflows``
of the package that ships it, or in code with
``registry_with(BUILTIN_WORKFLOWS).register_workflow(MyWorkflow)``.
"""

from dotmac.ticketing.domain.builtin_workflows import BUILTIN_WORKFLOWS
from dotmac.ticketing.domain.workflow import (
    RetryPolicy,
    TicketAction,
    TicketWorkflow,
    WorkflowContext,
    WorkflowResult,
    WorkflowStep,
)
from dotmac.ticketing.service.workflows import (
    ENTRY_POINT_GROUP,
    WorkflowRegistry,
    registry_with,
)

__all__ = [
    "BUILTIN_WORKFLOWS",
    "ENTRY_POINT_GROUP",
    "RetryPolicy",
    "TicketAction",
    "TicketWorkflow",
    "WorkflowContext",
    "WorkflowRegistry",
    "WorkflowResult",
    "WorkflowStep",
    "registry_with",
]

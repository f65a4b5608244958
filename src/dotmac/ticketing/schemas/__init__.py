"""The public contracts: HTTP request/response models and enumerations."""

from dotmac.ticketing.schemas.analytics import DashboardRead
from dotmac.ticketing.schemas.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from dotmac.ticketing.schemas.notifications import (
    NotificationPage,
    NotificationRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
)
from dotmac.ticketing.schemas.problems import Problem
from dotmac.ticketing.schemas.queries import (
    ProjectionStatusRead,
    TicketPage,
    TicketSummary,
)
from dotmac.ticketing.schemas.tenant_config import (
    TenantSettingsDocument,
    TenantSettingsRead,
)
from dotmac.ticketing.schemas.tickets import (
    AttachmentRead,
    CommentCreate,
    CommentRead,
    HistoryEntryRead,
    SatisfactionRate,
    TicketAssign,
    TicketCreate,
    TicketEscalate,
    TicketLink,
    TicketMerge,
    TicketRead,
    TicketReopen,
    TicketResolve,
    TicketStatusChange,
    TicketUpdate,
)

__all__ = [
    "AttachmentRead",
    "CommentCreate",
    "CommentRead",
    "DashboardRead",
    "HistoryEntryRead",
    "LinkRelation",
    "NotificationPage",
    "NotificationRead",
    "Problem",
    "ProjectionStatusRead",
    "SatisfactionRate",
    "TenantSettingsDocument",
    "TenantSettingsRead",
    "TicketAssign",
    "TicketCategory",
    "TicketChannel",
    "TicketCreate",
    "TicketEscalate",
    "TicketLink",
    "TicketMerge",
    "TicketPage",
    "TicketPriority",
    "TicketRead",
    "TicketReopen",
    "TicketResolve",
    "TicketStatus",
    "TicketStatusChange",
    "TicketSummary",
    "TicketUpdate",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookRead",
]

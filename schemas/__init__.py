"""The public contracts: HTTP request/response models and enumerations."""

from schemas.analytics import DashboardRead
from schemas.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from schemas.notifications import (
    NotificationPage,
    NotificationRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
)
from schemas.problems import Problem
from schemas.queries import ProjectionStatusRead, TicketPage, TicketSummary
from schemas.settings import TenantSettingsDocument, TenantSettingsRead
from schemas.tickets import (
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

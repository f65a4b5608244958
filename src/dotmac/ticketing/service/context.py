"""Who is asking: the caller of a use case, in simple types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.service.tracing import current_traceparent

STAFF_ROLES = frozenset({"agent", "supervisor", "admin", "service"})
# Most privileged first: the role recorded on events when a caller has several.
ROLE_PRECEDENCE = ("admin", "service", "supervisor", "agent", "customer")


@dataclass(frozen=True)
class RequestContext:
    """A caller of the ticket use cases and the request it is making."""

    tenant_id: str
    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    correlation_id: str | None = None
    causation_id: str | None = None
    automation: str | None = None
    #: W3C trace context; unset: the one the request or record being
    #: handled set (``service.tracing``).
    traceparent: str | None = None

    @classmethod
    def for_automation(
        cls, tenant_id: str, name: str, *, causation_id: str | None = None
    ) -> RequestContext:
        """An automated actor (timer, workflow step) acting on an event."""
        return cls(
            tenant_id=tenant_id,
            user_id=name,
            roles=frozenset({"service"}),
            causation_id=causation_id,
            automation=name,
        )

    @classmethod
    def for_user(
        cls, tenant_id: str, user: Any, *, correlation_id: str | None = None
    ) -> RequestContext:
        """The caller an embedding host's auth gave: a mapping or an object
        with ``sub`` (or ``id``) and ``roles``. Raises ``ValueError`` when
        the tenant or the subject is missing."""
        if isinstance(user, Mapping):
            sub, roles = user.get("sub") or user.get("id"), user.get("roles", ())
        else:
            sub = getattr(user, "sub", None) or getattr(user, "id", None)
            roles = getattr(user, "roles", ())
        if not tenant_id or not sub:
            raise ValueError("the caller has no tenant or no subject")
        return cls(
            tenant_id=str(tenant_id),
            user_id=str(sub),
            roles=frozenset(str(r) for r in roles),
            correlation_id=correlation_id,
        )

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def is_customer(self) -> bool:
        return not self.is_staff

    @property
    def primary_role(self) -> str:
        return next((r for r in ROLE_PRECEDENCE if r in self.roles), "customer")

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def provenance(self) -> Provenance:
        actor = (
            Actor.automation(self.automation)
            if self.automation
            else Actor(id=self.user_id, role=self.primary_role)
        )
        return Provenance(
            tenant_id=self.tenant_id,
            actor=actor,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            traceparent=self.traceparent or current_traceparent(),
        )

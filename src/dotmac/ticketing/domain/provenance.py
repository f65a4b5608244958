"""Who or what caused an event, and why.

Every ticket event carries its provenance so the history answers "who did
this": a person (token ``sub`` and role), or an automation acting on behalf
of the system, with the request's correlation id and, for automated
commands, the id of the event that caused it.
"""

from dataclasses import dataclass, replace
from typing import Any, Literal

ActorKind = Literal["user", "automation"]


@dataclass(frozen=True)
class Actor:
    id: str
    role: str
    kind: ActorKind = "user"

    @classmethod
    def automation(cls, name: str) -> "Actor":
        return cls(id=name, role="automation", kind="automation")

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "role": self.role, "kind": self.kind}

    @property
    def is_agent(self) -> bool:
        """A person answering on the support side (counts as a response)."""
        return self.kind == "user" and self.role in AGENT_ROLES


AGENT_ROLES = frozenset({"agent", "supervisor", "admin"})


@dataclass(frozen=True)
class Provenance:
    tenant_id: str
    actor: Actor
    correlation_id: str | None = None
    causation_id: str | None = None
    #: W3C trace context of the request (or event) this acts for, kept on
    #: the events as metadata (``domain.trace_context``).
    traceparent: str | None = None

    def acting_as(self, automation: str, *, causation_id: str | None) -> "Provenance":
        """An automation acting within the same request: its correlation id
        and trace, caused by ``causation_id``."""
        return replace(
            self, actor=Actor.automation(automation), causation_id=causation_id
        )

    def event_fields(self) -> dict[str, Any]:
        """The provenance attributes stored on every ticket event."""
        return {
            "tenant_id": self.tenant_id,
            "actor": self.actor.as_dict(),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


def event_id(aggregate_id: object, version: int) -> str:
    """``<aggregate id>:<version>``: names one event of a stream.

    The form of a CloudEvent's ``id`` (``consumers.cloudevents``), so a
    ``causation_id`` set in the domain names the published event.
    """
    return f"{aggregate_id}:{version}"

"""Why a use case did not run, beyond a domain rule saying no."""


class TicketNotFound(Exception):
    """No such ticket for this caller (also: another tenant's or customer's)."""

    def __init__(self, ticket_id: object) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"ticket {ticket_id} not found")


class JobNotFound(Exception):
    """No such bulk job in the caller's tenant."""

    def __init__(self, job_id: object) -> None:
        super().__init__(f"job {job_id} not found")


class NoSuchVersion(Exception):
    """The ticket exists, but never had the version (or moment) asked for."""

    def __init__(self, ticket_id: object, asked: object, current: int) -> None:
        self.ticket_id = ticket_id
        super().__init__(
            f"ticket {ticket_id} has no version at {asked}:"
            f" its versions are 1 to {current}"
        )


class SettingsVersionNotFound(Exception):
    """The tenant's settings never had the version asked for."""

    def __init__(self, asked: int, current: int) -> None:
        self.asked = asked
        stored = f"their versions are 1 to {current}" if current else "none is stored"
        super().__init__(f"the settings have no version {asked}: {stored}")


class AttachmentNotFound(Exception):
    def __init__(self, attachment_id: str) -> None:
        super().__init__(f"attachment {attachment_id} not found")


class ViewNotFound(Exception):
    """No such saved view for this caller (another's personal one, another
    team's, another tenant's)."""

    def __init__(self, view_id: object) -> None:
        super().__init__(f"view {view_id} not found")


class TimeEntryNotFound(Exception):
    """No such time entry on the ticket."""

    def __init__(self, entry_id: str) -> None:
        super().__init__(f"time entry {entry_id} not found")


class NotificationNotFound(Exception):
    """No such notification for this caller (also: another user's)."""

    def __init__(self, notification_id: object) -> None:
        super().__init__(f"notification {notification_id} not found")


class WebhookNotFound(Exception):
    """No such webhook in the caller's tenant."""

    def __init__(self, webhook_id: object) -> None:
        super().__init__(f"webhook {webhook_id} not found")


class WebhookLimitReached(Exception):
    """The tenant has as many webhooks as a tenant may register."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"a tenant may register at most {limit} webhooks"
            " (TICKETING_WEBHOOKS_PER_TENANT_MAX); remove one first"
        )


class WorkflowNotStarted(Exception):
    """The ticket runs no workflow (``why`` says why, when known)."""

    def __init__(self, ticket_id: object, why: str = "") -> None:
        super().__init__(
            f"ticket {ticket_id} has no workflow" + (f": {why}" if why else "")
        )


class PermissionDenied(Exception):
    """The caller's role may not run this use case."""


class ConcurrencyConflict(Exception):
    """Other writers kept changing the ticket; every retry lost the race."""


class PreconditionFailed(Exception):
    """The ticket is not at the version the client said it expected."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"ticket is at version {actual}, not {expected}")


class IdempotencyKeyReused(Exception):
    """The same Idempotency-Key came with a different request."""


class SubjectNotFound(Exception):
    """The tenant holds nothing about this customer (and never did)."""

    def __init__(self, subject_id: str) -> None:
        super().__init__(f"no customer {subject_id!r} in this tenant")
        self.subject_id = subject_id


class SimulationNotFound(Exception):
    """No simulation with this id in the caller's tenant."""

    def __init__(self, simulation_id: object) -> None:
        super().__init__(f"no simulation {simulation_id}")


class MacroNotFound(Exception):
    """No such macro in the caller's tenant."""

    def __init__(self, macro_id: object) -> None:
        super().__init__(f"macro {macro_id} not found")


class TriggerNotFound(Exception):
    """No such trigger in the caller's tenant."""

    def __init__(self, trigger_id: object) -> None:
        super().__init__(f"trigger {trigger_id} not found")

"""Errors raised when the domain refuses a command."""


class DomainError(Exception):
    """A command was refused by a business rule."""


class CommandRefused(DomainError):
    """The ticket's current state does not allow the command (HTTP 409)."""

    def __init__(self, command: str, status: str, reason: str = "") -> None:
        self.command = command
        self.status = status
        self.reason = reason
        message = f"cannot {command}: ticket is {status}"
        super().__init__(f"{message}: {reason}" if reason else message)


class InvalidCommand(DomainError):
    """The command's own arguments break a rule (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")

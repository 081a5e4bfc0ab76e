"""The error tree. The HTTP edge maps each class to one status code (``adapters/http/_errors.py``).

Every error carries a message that tells the user what to do, and optional
``details`` (JSON-able) that say which field, which limit or which setting.
"""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import frozen


class MemorydError(Exception):
    """Base of every error memoryd raises on purpose."""

    #: The message used when none is given.
    default_message: ClassVar[str] = "An unexpected error occurred"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


@frozen
class FieldError:
    """One invalid field: its path in the request (``messages[0].role``) and why."""

    path: str
    message: str


class ValidationFailed(MemorydError):
    """The request is malformed; ``details`` lists each bad field with its path."""

    default_message = "Invalid request"

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        super().__init__(
            message or self.default_message,
            details=[{"path": e.path, "message": e.message} for e in errors],
        )
        self.errors = errors


class InvalidPrompt(MemorydError):
    """The chat request has no user message with text."""

    default_message = "Invalid prompt - please rephrase your message"


class Unauthorized(MemorydError):
    """No key, an unknown key or a revoked key."""

    default_message = "Unauthorized"


class QuotaExceeded(MemorydError):
    """The write would take the key past its token quota; nothing was stored."""

    default_message = "Token quota exceeded"


class Forbidden(MemorydError):
    """The key may not act on these container tags."""

    default_message = "Forbidden"


class NotFound(MemorydError):
    """No such thing for this key (also what another tenant's data looks like)."""

    default_message = "Not found"


class PayloadTooLarge(MemorydError):
    default_message = "Request body too large"


class StoreUnavailable(MemorydError):
    """The storage backend cannot be reached."""

    default_message = "Database connection failed"


class ModelUnavailable(MemorydError):
    """The chat model or embedding backend failed or cannot be reached."""

    default_message = "Model backend unavailable"


class ConfigurationError(MemorydError):
    """A setting is missing or wrong; the message names the setting."""

    default_message = "Invalid configuration"

"""What every detector answers: a `Bounce`, or None when the message is not in its format."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


@dataclass
class RecipientStatus:
    """What a DSN says of one recipient: its Status, Diagnostic-Code and Original-Recipient (RFC 3464 2.3)."""

    status: str | None = None
    diagnostic: str = ""
    original_recipient: str | None = None


@dataclass
class Bounce:
    """A delivery report. `kind`: failed, delayed, delivered, feedback (ARF complaint), mdn (read receipt).

    `details` maps each recipient of a DSN to what its own block says (empty for the other
    formats, whose `status` and `diagnostic` stand for every recipient).
    """

    kind: str
    recipients: list[str]
    original_message_id: str | None = None
    status: str | None = None
    diagnostic: str = ""
    details: dict[str, RecipientStatus] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.kind == "failed"

    def failure_of(self, recipient: str) -> RecipientStatus:
        """The status and diagnostic for one failed recipient: its own block, else the report's."""
        own = self.details.get(recipient.lower())
        if own is not None and (own.status or own.diagnostic):
            return own
        return RecipientStatus(self.status, self.diagnostic, own.original_recipient if own else None)


#: A detector reads the message, what `app.mail.parse` made of it and the envelope sender (None when unknown).
Detector = Callable[[Message, "ParsedMessage", "str | None"], "Bounce | None"]

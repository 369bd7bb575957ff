"""What every detector answers: a `Bounce`, or None when the message is not in its format."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


@dataclass
class Bounce:
    """A delivery report. `kind`: failed, delayed, delivered, feedback (ARF complaint), mdn (read receipt)."""

    kind: str
    recipients: list[str]
    original_message_id: str | None = None
    status: str | None = None
    diagnostic: str = ""

    @property
    def failed(self) -> bool:
        return self.kind == "failed"


#: A detector reads the message, what `app.mail.parse` made of it and the envelope sender (None when unknown).
Detector = Callable[[Message, "ParsedMessage", "str | None"], "Bounce | None"]

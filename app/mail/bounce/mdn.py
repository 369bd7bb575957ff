"""Message disposition notifications (RFC 8098): read receipts, as kind "mdn".

A multipart/report with report-type=disposition-notification, or holding a
message/disposition-notification part, is an MDN whatever else it holds. It names no
recipient; `app.mail.parse` treats it as an automatic reply, not as a delivery report.
"""
from __future__ import annotations

from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce._fields import MDN, original_message_id, report_of
from app.mail.bounce.result import Bounce

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


def read_receipt(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    report = report_of(msg)
    if report is None or report.kind != MDN:
        return None
    return Bounce("mdn", [], original_message_id(msg, parsed))

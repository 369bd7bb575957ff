"""Message disposition notifications (RFC 8098): read receipts, as kind "mdn".

A multipart/report with report-type=disposition-notification, or holding a
message/disposition-notification part, is an MDN whatever else it holds. It names no
recipient; `app.mail.parse` treats it as an automatic reply, not as a delivery report,
and threads it by the message it is about: the notification's Original-Message-ID field
(RFC 8098 3.2.5), else the Message-ID of the returned original.
"""
from __future__ import annotations

import re
from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce._fields import MDN, Report, fields_of, original_message_id, report_of
from app.mail.bounce.result import Bounce

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


def read_receipt(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    report = report_of(msg)
    if report is None or report.kind != MDN:
        return None
    return Bounce("mdn", [], _original_message_id_field(report) or original_message_id(msg, parsed))


def _original_message_id_field(report: Report) -> str | None:
    for part in report.parts:
        if part.get_content_type() == "message/disposition-notification":
            for name, value in fields_of(part):
                found = re.search(r"<[^<>\s]+>", value) if name == "original-message-id" else None
                if found:
                    return found.group(0)
    return None

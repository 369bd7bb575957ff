"""Abuse feedback reports (ARF, RFC 5965): a complaint relayed by the recipient's provider, as kind "feedback".

A multipart/report with report-type=feedback-report, or holding a message/feedback-report
part (and no disposition notification). The recipients are the report's Original-Rcpt-To
and Removal-Recipient fields, which providers often leave out, else the To of the
returned original; the diagnostic is the Feedback-Type (abuse, fraud, ...).
"""
from __future__ import annotations

from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce._fields import (
    ADDR, ARF, clean, fields_of, original_message_id, original_recipients, report_of,
)
from app.mail.bounce.result import Bounce

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


def complaint(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    report = report_of(msg)
    if report is None or report.kind != ARF:
        return None
    fields = fields_of(next((p for p in report.parts if p.get_content_type() == "message/feedback-report"), None))
    recipients = clean(ADDR.findall(" ".join(v for k, v in fields if k in ("original-rcpt-to", "removal-recipient"))))
    if not recipients:
        recipients = original_recipients(msg, parsed)
    return Bounce("feedback", recipients, original_message_id(msg, parsed),
                  diagnostic=" ".join(v for k, v in fields if k == "feedback-type")[:500])

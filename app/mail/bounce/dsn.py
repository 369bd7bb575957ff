"""Delivery status notifications (RFC 3464): failed, delayed or delivered.

A multipart/report (neither an MDN nor ARF) holding a message/delivery-status part, or
message/global-delivery-status (RFC 6533). After the per-message block, each block is one
recipient: Final-Recipient (else Original-Recipient), Action, Status, Diagnostic-Code. A
report with a single block has it read as a recipient's.

The kind is the worst the report says of anyone: failed (Action failed, or no Action and a
5.x.x Status), then delayed, then delivered (any other Action: delivered, relayed,
expanded); the recipients are those of that kind. Blocks that name no recipient at all leave kind "failed" with the
addresses the text names near a failure, or the To of the returned original. The status
is the first 4.x.x or 5.x.x one; the diagnostic the Diagnostic-Codes, else an excerpt. `details`
keeps each recipient's own Status, Diagnostic-Code and Original-Recipient (a report may say 5.1.1
of one recipient and 4.2.2 of another; suppression reads them apart).
"""
from __future__ import annotations

import re
from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce._fields import (
    DSN, clean, field_lines, fields_of, original_message_id, original_recipients, report_of,
)
from app.mail.bounce._text import diagnostic, recipients_from_text
from app.mail.bounce.result import Bounce, RecipientStatus

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


def delivery_status(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    report = report_of(msg)
    if report is None or report.kind != DSN:
        return None
    status_part = next((p for p in report.parts if p.get_content_type() in (
        "message/delivery-status", "message/global-delivery-status")), None)
    if status_part is None:
        return None
    blocks = _dsn_blocks(status_part)
    failed, delayed, delivered, statuses, diagnostics = [], [], [], [], []
    details: dict[str, RecipientStatus] = {}
    for fields in blocks[1:] if len(blocks) > 1 else blocks:
        values = dict(fields)
        recipient = values.get("final-recipient") or values.get("original-recipient") or ""
        recipient = recipient.split(";", 1)[-1].strip()
        if "@" not in recipient:
            continue
        action = values.get("action", "").strip().lower()
        status = (values.get("status", "") or "").strip().split(" ")[0]
        if status:
            statuses.append(status)
        said = values.get("diagnostic-code", "").split(";", 1)[-1].strip()
        if said:
            diagnostics.append(said)
        original = values.get("original-recipient", "").split(";", 1)[-1].strip()
        for key in clean([recipient]):
            details.setdefault(key, RecipientStatus(status or None, " ".join(said.split())[:1000], next(iter(clean([original])), None)))
        if action.startswith("fail") or (not action and status.startswith("5")):
            failed.append(recipient)
        elif action.startswith("delay"):
            delayed.append(recipient)
        else:
            delivered.append(recipient)
    excerpt = " ".join(diagnostics)[:1000]
    if failed:
        recipients, kind = clean(failed), "failed"
    elif delayed:
        recipients, kind = clean(delayed), "delayed"
    elif delivered:
        recipients, kind = clean(delivered), "delivered"
    else:
        recipients = recipients_from_text(parsed) or original_recipients(msg, parsed)
        kind = "failed"
    if not recipients:
        return None
    status = next((s for s in statuses if s[:1] in "45"), statuses[0] if statuses else None)
    return Bounce(kind, recipients, original_message_id(msg, parsed), status,
                  excerpt or diagnostic(parsed.text, recipients), details)


def _dsn_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """The per-message and per-recipient field blocks of a delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [fields_of(block) for block in payload]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        raw = part.get_payload(decode=True) or b""
        text = raw.decode("utf-8", "replace")
    blocks = []
    for chunk in re.split(r"\r?\n\s*\r?\n", text):
        fields = field_lines(chunk)
        if fields:
            blocks.append(fields)
    return blocks

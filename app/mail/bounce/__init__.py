"""Delivery reports: bounces (RFC 3464 DSNs and the many that are not), ARF complaints, MDNs.

`detect_report(msg, parsed, envelope_from)` answers a `Bounce` (or None) with the
failed recipients, the original Message-ID (so the ingest service can mark our
outgoing message as bounced) and the diagnostic text. It tries, in order:

1. `multipart/report`: `delivery-status` (per-recipient Action, Status,
   Final-Recipient, Diagnostic-Code), `feedback-report` (ARF) and
   `disposition-notification` (read receipts, answered as kind "mdn");
2. GNU Mailman's `flufl.bounce` detectors, which know the non-standard formats
   of Exim, Postfix, qmail, Exchange, Yahoo, AOL, GroupWise and others;
3. our own heuristics for what is left: `X-Failed-Recipients`, a sender like
   MAILER-DAEMON or postmaster (or a null reverse path) together with a
   bounce-like subject, recipients read from the text near SMTP codes, and as a
   last resort the To of the returned original message.

It never raises; a detector that breaks on odd input is skipped.
"""
from __future__ import annotations

import logging
import re
from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce._fields import (
    ADDR, as_text, clean, field_lines, fields_of, original_message_id, original_recipients,
)
from app.mail.bounce._text import (
    BOUNCE_SUBJECT, DAEMON_LOCALS, SMTP_CODE, STATUS, diagnostic, recipients_from_text, status_in,
)
from app.mail.bounce.result import Bounce

if TYPE_CHECKING:  # only for annotations: parse.py imports this module
    from app.mail.parse import ParsedMessage

log = logging.getLogger(__name__)


def detect_report(msg: Message, parsed: "ParsedMessage", envelope_from: str | None = None) -> "Bounce | None":
    try:
        report = _multipart_report(msg, parsed)
        if report is not None:
            return report
    except Exception:  # noqa: BLE001
        log.debug("multipart/report reading failed", exc_info=True)

    from_raw = as_text(msg.get("From", ""))
    if not _may_be_report(parsed, envelope_from, from_raw):
        return None  # flufl's detectors scan every line of every part: only for candidates
    recipients: list[str] = []
    try:
        from flufl.bounce import all_failures

        logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
        temporary, permanent = all_failures(msg)
        recipients = clean([as_text(r) for r in (*permanent, *temporary)])
        if recipients:
            kind = "failed" if permanent else "delayed"
            return Bounce(kind, recipients, original_message_id(msg, parsed), status_in(parsed.text),
                          diagnostic(parsed.text, recipients))
    except Exception:  # noqa: BLE001 - flufl's heuristics on odd input
        log.debug("flufl.bounce failed", exc_info=True)

    failed_header = parsed.automation.get("x-failed-recipients", "")
    if failed_header:
        recipients = clean(ADDR.findall(failed_header))
        if recipients:
            return Bounce("failed", recipients, original_message_id(msg, parsed), status_in(parsed.text),
                          diagnostic(parsed.text, recipients))

    if not _looks_like_bounce(parsed, envelope_from, from_raw):
        return None
    recipients = recipients_from_text(parsed) or original_recipients(msg, parsed)
    if not recipients:
        return None
    status = status_in(parsed.text)
    kind = "delayed" if status and status.startswith("4") and re.search(
        r"delay|will (be )?retr|still trying|warning", parsed.text[:4000], re.IGNORECASE) else "failed"
    return Bounce(kind, recipients, original_message_id(msg, parsed), status, diagnostic(parsed.text, recipients))


def _may_be_report(parsed: "ParsedMessage", envelope_from: str | None, from_raw: str) -> bool:
    """Cheap pre-check: a daemon-like or null sender, a bounce-like subject, or X-Failed-Recipients."""
    if parsed.automation.get("x-failed-recipients") or BOUNCE_SUBJECT.search(parsed.subject or ""):
        return True
    if (envelope_from is not None and envelope_from.strip("<> ") == "") \
            or parsed.automation.get("return-path", "").strip() == "<>":
        return True
    local = parsed.from_addr.split("@", 1)[0].lower()
    sender = f"{local} {from_raw} {parsed.from_name}".lower()
    return local in DAEMON_LOCALS or any(w in sender for w in (
        "mailer-daemon", "postmaster", "post_master", "mail delivery", "delivery", "bounce", "no-reply", "noreply",
        "daemon", "mailer", "notification"))


def _looks_like_bounce(parsed: "ParsedMessage", envelope_from: str | None, from_raw: str = "") -> bool:
    local = parsed.from_addr.split("@", 1)[0].lower()
    from_raw = from_raw.lower()
    daemon = local in DAEMON_LOCALS or "mailer-daemon" in local or "postmaster" in local \
        or (envelope_from is not None and envelope_from.strip("<> ") == "") \
        or parsed.automation.get("return-path", "").strip() == "<>" \
        or "mailer-daemon" in (parsed.from_name or "").lower() \
        or "mail delivery" in (parsed.from_name or "").lower() \
        or "postmaster" in (parsed.from_name or "").lower() \
        or "mailer-daemon" in from_raw or "postmaster" in from_raw or "post_master" in from_raw
    subject = bool(BOUNCE_SUBJECT.search(parsed.subject or ""))
    if daemon and (subject or SMTP_CODE.search(parsed.text[:5000] or "")):
        return True
    # Some systems send bounces from ordinary-looking addresses: a clear subject plus an SMTP reply.
    return subject and bool(STATUS.search(parsed.text[:5000]) or re.search(
        r"\b5\d\d\b.{0,80}(user|mailbox|recipient|address)", parsed.text[:5000], re.IGNORECASE | re.DOTALL))


def _multipart_report(msg: Message, parsed: "ParsedMessage") -> "Bounce | None":
    report = None
    for part in msg.walk():
        if part.get_content_type() == "multipart/report":
            report = part
            break
    if report is None:
        return None
    report_type = (report.get_param("report-type") or "").lower()
    sub_parts = [p for p in report.walk() if p is not report]
    if report_type == "disposition-notification" or any(
            p.get_content_type() == "message/disposition-notification" for p in sub_parts):
        return Bounce("mdn", [], original_message_id(msg, parsed))
    if report_type == "feedback-report" or any(p.get_content_type() == "message/feedback-report" for p in sub_parts):
        fields = fields_of(next((p for p in sub_parts if p.get_content_type() == "message/feedback-report"), None))
        recipients = clean(ADDR.findall(" ".join(v for k, v in fields if k in ("original-rcpt-to", "removal-recipient"))))
        if not recipients:
            recipients = original_recipients(msg, parsed)
        return Bounce("feedback", recipients, original_message_id(msg, parsed),
                      diagnostic=" ".join(v for k, v in fields if k == "feedback-type")[:500])

    status_part = next((p for p in sub_parts if p.get_content_type() in (
        "message/delivery-status", "message/global-delivery-status")), None)
    if status_part is None:
        return None
    blocks = _dsn_blocks(status_part)
    failed, delayed, delivered, statuses, diagnostics = [], [], [], [], []
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
        if values.get("diagnostic-code"):
            diagnostics.append(values["diagnostic-code"].split(";", 1)[-1].strip())
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
                  excerpt or diagnostic(parsed.text, recipients))


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

"""Bounces in no standard format, read from a header, the sender, the subject and the text.

* `failed_recipients_header`: the X-Failed-Recipients header (Exim's, and others copy it)
  names the failed addresses;
* `plain_text`: a daemon-like sender (MAILER-DAEMON, postmaster, a null reverse path) with a
  bounce-like subject or an SMTP reply code in the text, or any sender with a bounce-like
  subject and a status code or a 5xx reply about a user or mailbox in the text. The
  recipients are the addresses the text names near a failure, else the To of the returned
  original; a 4.x.x status with words of delay or retrying is "delayed", anything else "failed".

Both come after GNU Mailman's detectors (`mailman`), which know more formats and read
them better, and only answer what those did not.
"""
from __future__ import annotations

import re
from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce._fields import ADDR, as_text, clean, original_message_id, original_recipients
from app.mail.bounce._text import (
    BOUNCE_SUBJECT, DAEMON_LOCALS, SMTP_CODE, STATUS, diagnostic, null_reverse_path, recipients_from_text,
    status_in,
)
from app.mail.bounce.result import Bounce

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage


def failed_recipients_header(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    failed_header = parsed.automation.get("x-failed-recipients", "")
    if not failed_header:
        return None
    recipients = clean(ADDR.findall(failed_header))
    if not recipients:
        return None
    return Bounce("failed", recipients, original_message_id(msg, parsed), status_in(parsed.text),
                  diagnostic(parsed.text, recipients))


def plain_text(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    if not _looks_like_bounce(parsed, envelope_from, as_text(msg.get("From", ""))):
        return None
    recipients = recipients_from_text(parsed) or original_recipients(msg, parsed)
    if not recipients:
        return None
    status = status_in(parsed.text)
    kind = "delayed" if status and status.startswith("4") and re.search(
        r"delay|will (be )?retr|still trying|warning", parsed.text[:4000], re.IGNORECASE) else "failed"
    return Bounce(kind, recipients, original_message_id(msg, parsed), status, diagnostic(parsed.text, recipients))


def _looks_like_bounce(parsed: ParsedMessage, envelope_from: str | None, from_raw: str = "") -> bool:
    local = parsed.from_addr.split("@", 1)[0].lower()
    from_raw = from_raw.lower()
    daemon = local in DAEMON_LOCALS or "mailer-daemon" in local or "postmaster" in local \
        or null_reverse_path(parsed, envelope_from) \
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

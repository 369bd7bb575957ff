"""GNU Mailman's detectors (`flufl.bounce`): the formats that are not RFC 3464.

They know Exim, Postfix, qmail, Exchange, Yahoo, AOL, GroupWise and other servers'
own bounce texts. They scan every line of every part, so they run only on a likely
report: a daemon-like or null sender, a bounce-like subject, or X-Failed-Recipients.
A permanent failure is kind "failed", a temporary one "delayed".
"""
from __future__ import annotations

import logging
from email.message import Message
from typing import TYPE_CHECKING

from flufl.bounce import all_failures

from app.mail.bounce._fields import as_text, clean, original_message_id
from app.mail.bounce._text import (
    BOUNCE_SUBJECT, DAEMON_LOCALS, diagnostic, null_reverse_path, status_in,
)
from app.mail.bounce.result import Bounce

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage

#: Words in the sender (local part, raw From, display name) of a likely report.
_SENDER_WORDS = ("mailer-daemon", "postmaster", "post_master", "mail delivery", "delivery", "bounce", "no-reply",
                 "noreply", "daemon", "mailer", "notification")


def known_formats(msg: Message, parsed: ParsedMessage, envelope_from: str | None) -> Bounce | None:
    if not _may_be_report(parsed, envelope_from, as_text(msg.get("From", ""))):
        return None  # flufl's detectors scan every line of every part: only for candidates
    # flufl.bounce logs each detector it runs at INFO, and a detector's exception at ERROR with the
    # traceback before raising it again (which `detect_report` logs at debug): too loud for every report.
    # Set on each call, since a logging configuration applied after import may reset it.
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    temporary, permanent = all_failures(msg)
    recipients = clean((*permanent, *temporary))
    if not recipients:
        return None
    kind = "failed" if permanent else "delayed"
    return Bounce(kind, recipients, original_message_id(msg, parsed), status_in(parsed.text),
                  diagnostic(parsed.text, recipients))


def _may_be_report(parsed: ParsedMessage, envelope_from: str | None, from_raw: str) -> bool:
    """Cheap pre-check: a daemon-like or null sender, a bounce-like subject, or X-Failed-Recipients."""
    if parsed.automation.get("x-failed-recipients") or BOUNCE_SUBJECT.search(parsed.subject or ""):
        return True
    if null_reverse_path(parsed, envelope_from):
        return True
    local = parsed.from_addr.split("@", 1)[0].lower()
    sender = f"{local} {from_raw} {parsed.from_name}".lower()
    return local in DAEMON_LOCALS or any(w in sender for w in _SENDER_WORDS)

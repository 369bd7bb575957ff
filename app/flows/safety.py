"""Loop and abuse safety: to whom automatic mail may never go, and when a customer has had enough.

`refusal_reason` is asked before every automatic mail (`app.flows.automatic`). It
refuses to write to automatic senders (any `Auto-Submitted` but "no", `Precedence:
bulk/junk/list`, `X-Autoreply`, `X-Autorespond`, mailing lists with
`List-Id`/`List-Unsubscribe`, delivery-status reports, an empty Return-Path), to
noreply/MAILER-DAEMON/postmaster-style addresses, to our own addresses (any address
configured here, any contact-center mailbox that forwards to us, the platform domain),
to blocked senders and to suppressed addresses (their mail bounced: `app.runtime.suppression`),
and caps automatic mail at `AUTO_REPLIES_PER_HOUR` per
customer. Two installations whose auto-replies point at each other therefore exchange
at most that many mails an hour, and in practice none: each side sees the other's
`Auto-Submitted` header.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parseaddr

from flask import current_app
from sqlalchemy import func, select

from app.blobs import blob_store
from app.extensions import db
from app.flows import blocklist
from app.mail.addresses import is_valid_address
from app.models._types import utcnow
from app.models.channels import EmailAddress
from app.models.flows import AutomaticMail
from app.models.inbox import Conversation, Message
from app.runtime import suppression

log = logging.getLogger(__name__)

_NOREPLY_LOCALS = {
    "mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply",
    "do_not_reply", "bounce", "bounces", "listserv", "majordomo", "autoreply", "auto-reply", "daemon",
    "notifications", "notification",
}


def _headers(message: Message):
    """The stored raw message's headers, or None when there are none."""
    if not message.raw_sha256:
        return None
    try:
        raw = blob_store().get(message.raw_sha256)
    except Exception:  # noqa: BLE001 - a missing blob must not stop the flow
        log.warning("raw message %s of message %s is missing", message.raw_sha256, message.id)
        return None
    return BytesHeaderParser(policy=default_policy).parsebytes(raw)


def automatic_sender_reason(message: Message) -> str | None:
    """Why this inbound mail looks automatic (never answer it automatically), or None."""
    headers = _headers(message)
    if headers is not None:
        auto = str(headers.get("Auto-Submitted", "") or "").split(";")[0].strip().lower()
        if auto and auto != "no":
            return f"the mail is automatic (Auto-Submitted: {auto})"
        precedence = str(headers.get("Precedence", "") or "").strip().lower()
        if precedence in ("bulk", "junk", "list", "auto_reply"):
            return f"the mail is bulk or list mail (Precedence: {precedence})"
        for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
            if headers.get(name):
                return f"the mail is automatic ({name})"
        suppress = str(headers.get("X-Auto-Response-Suppress", "") or "").lower()
        if any(v in suppress for v in ("all", "autoreply", "oof")):
            return "the sender asked for no automatic replies (X-Auto-Response-Suppress)"
        if headers.get("List-Id") or headers.get("List-Unsubscribe") or headers.get("List-Post"):
            return "the mail comes from a mailing list"
        ctype = headers.get_content_type()
        if ctype == "multipart/report" or "delivery-status" in str(headers.get("Content-Type", "")).lower():
            return "the mail is a delivery report (bounce)"
        if "Return-Path" in headers and str(headers.get("Return-Path")).strip() == "<>":
            return "the mail has an empty Return-Path (a bounce)"
    return None


def is_noreply(address: str) -> bool:
    local = (address or "").rpartition("@")[0].lower()
    if not local:
        return True
    base = local.split("+", 1)[0]
    return base in _NOREPLY_LOCALS or base.startswith(("noreply", "no-reply", "donotreply", "bounce",
                                                       "mailer-daemon"))


def is_our_address(address: str) -> bool:
    """Any address configured here, a contact-center mailbox forwarding to us, or the platform domain."""
    address = (address or "").strip().lower()
    if not address:
        return False
    if address.rpartition("@")[2] == current_app.config["PLATFORM_MAIL_DOMAIN"].lower():
        return True
    return db.session.scalar(select(EmailAddress.id).where(
        (func.lower(EmailAddress.address) == address) | (EmailAddress.live_address == address)
        | (func.lower(EmailAddress.forwarded_from) == address)
        | (func.lower(EmailAddress.username) == address)).limit(1)) is not None


def automatic_mails_last_hour(recipient: str, now: datetime | None = None) -> int:
    since = (now or utcnow()) - timedelta(hours=1)
    return db.session.scalar(select(func.count()).select_from(AutomaticMail).where(
        AutomaticMail.recipient == recipient.lower(), AutomaticMail.created_at > since)) or 0


def refusal_reason(conversation: Conversation, recipient: str, trigger: Message | None) -> str | None:
    """Why no automatic mail may go to `recipient` now, or None when it may."""
    recipient = (recipient or "").strip().lower()
    if not recipient or "@" not in recipient:
        return "the customer has no email address"
    if not is_valid_address(recipient):
        return f"{recipient} is not an address we send to"
    if is_noreply(recipient):
        return f"{recipient} is a noreply or system address"
    if is_our_address(recipient):
        return f"{recipient} is one of our own addresses"
    if trigger is not None:
        sender = parseaddr(trigger.from_addr or "")[1].lower()
        if sender and sender != recipient and (is_noreply(sender) or is_our_address(sender)):
            return f"the mail came from {sender}"
        reason = automatic_sender_reason(trigger)
        if reason:
            return reason
    if blocklist.is_blocked(conversation.address_id, recipient):
        return f"{recipient} is on the Email Blocklist"
    suppressed = suppression.suppression_of(recipient)
    if suppressed is not None:
        return f"{recipient} is on the suppression list ({suppression.describe(suppressed)})"
    cap = int(current_app.config.get("AUTO_REPLIES_PER_HOUR", 3))
    if automatic_mails_last_hour(recipient) >= cap:
        return f"{recipient} already got {cap} automatic mails in the last hour"
    return None

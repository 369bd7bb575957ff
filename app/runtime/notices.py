"""Plain-text notices from Pigeonhole itself (not from a channel address), through the platform relay.

Mailbox alerts to admins and password-reset links to users go this way: From
`Pigeonhole <pigeonhole@PLATFORM_MAIL_DOMAIN>`, `Auto-Submitted: auto-generated` (RFC 3834), sent
at once over `SMTP_RELAY_URL`. Call it after the commit, with no transaction open.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import current_app

from app.mail.smtp import DeliveryError, SMTPSession, parse_relay_url
from app.runtime.tls import configured_context

log = logging.getLogger(__name__)


def send_notice(recipients: list[str], subject: str, body: str) -> bool:
    """Send `body` to `recipients`; True when the relay accepted it.

    Never raises: no relay, no recipient or a refusal are logged (the subject only, never the
    body, which may hold a link) and give False.
    """
    url = current_app.config.get("SMTP_RELAY_URL") or ""
    if not recipients or not url:
        log.warning("cannot send the notice (%s): %s", "no recipient" if url else "no relay (SMTP_RELAY_URL)", subject)
        return False
    domain = current_app.config["PLATFORM_MAIL_DOMAIN"]
    sender = f"pigeonhole@{domain}"
    message = EmailMessage()
    message["From"] = f"Pigeonhole <{sender}>"
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid("notice", domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(body)
    try:
        settings = parse_relay_url(url)
        with SMTPSession(settings, context=configured_context() if settings.security != "none" else None,
                         timeout=current_app.config["SMTP_TIMEOUT_SECONDS"],
                         helo_name=current_app.config.get("SMTP_HELO_NAME") or domain) as session:
            session.send(sender, recipients, message.as_bytes())
    except (DeliveryError, ValueError) as exc:
        log.warning("cannot send the notice %r: %s", subject, exc)
        return False
    return True

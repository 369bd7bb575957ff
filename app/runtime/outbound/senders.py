"""Who may send, and through which SMTP server: asked when a message is queued and again when it is sent."""
from __future__ import annotations

from functools import partial

from flask import current_app

from app.crypto import SecretUnreadable
from app.extensions import db
from app.mail.smtp import SMTPSettings, parse_relay_url
from app.models.channels import EmailAddress
from app.runtime.live import PublishedAddress, published_address
from app.runtime.netpolicy import mail_policy
from app.runtime.oauth import access_token, mechanism_of


class CannotSend(ValueError):
    """Nothing was queued; the text says why, in words for the agent."""


def sending_address(address_id: int | None) -> PublishedAddress:
    """The live configuration of an address that may send. Raises `CannotSend` with the reason."""
    live = published_address(address_id) if address_id is not None else None
    if live is None:
        row = db.session.get(EmailAddress, address_id) if address_id is not None else None
        if row is None:
            raise CannotSend("This conversation has no email address to send from.")
        if row.archived_at is not None:
            raise CannotSend(f"{row.address} is archived, so it cannot send.")
        if row.published is None:
            raise CannotSend(f"{row.address} has not been published yet, so it cannot send. Publish it first.")
        raise CannotSend(f"{row.address} is disabled, so it cannot send.")
    if not live.can_send:
        raise CannotSend(f"{live.address} is inbound-only, so it cannot send.")
    return live


def transport_settings(sender: PublishedAddress) -> SMTPSettings:
    """The SMTP server an address sends through. Raises `CannotSend` when none is usable.

    Platform-domain addresses share the platform relay (`SMTP_RELAY_URL`); custom-domain
    addresses use their own server, and log in when a password is stored (the outgoing
    server's own sign-in when it has one, else the mailbox's). A custom server carries the
    address's `NetPolicy`, so the session connects and signs in only where it allows.
    """
    if sender.is_platform:
        url = current_app.config.get("SMTP_RELAY_URL") or ""
        if not url:
            raise CannotSend("Platform-domain addresses send through the platform relay, and none is configured "
                             "(SMTP_RELAY_URL). Ask your administrator.")
        try:
            return parse_relay_url(url)
        except ValueError as exc:
            raise CannotSend(f"The platform relay setting is invalid: {exc}.") from None
    if not sender.outgoing_host or not sender.outgoing_port:
        raise CannotSend(f"{sender.address} has no outgoing (SMTP) server configured.")
    if sender.uses_oauth:
        # The token is asked for when a connection opens, so each connection gets a valid one.
        return SMTPSettings(
            host=sender.outgoing_host, port=int(sender.outgoing_port), security=sender.outgoing_security or "starttls",
            username=sender.login, mechanism=mechanism_of(sender.oauth_provider),
            token_source=partial(access_token, sender.id),  # called with the refused token, if any
            ca_pem=sender.tls_ca_pem, policy=mail_policy(sender.allow_plaintext_auth))
    try:
        password = sender.smtp_password()
    except SecretUnreadable as exc:
        raise CannotSend(f"The password of {sender.address} cannot be read: {exc}.") from None
    return SMTPSettings(
        host=sender.outgoing_host, port=int(sender.outgoing_port), security=sender.outgoing_security or "starttls",
        username=sender.smtp_login if password is not None else None, password=password, ca_pem=sender.tls_ca_pem,
        policy=mail_policy(sender.allow_plaintext_auth),
    )

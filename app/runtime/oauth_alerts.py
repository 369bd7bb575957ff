"""OAuth mailboxes that need a new sign-in: admins are told at once, once per episode, and again when signed in.

An episode starts when the provider refuses a mailbox's refresh token and its
credential turns "Sign-in needed" (`app.runtime.oauth`), and ends when an admin signs
in again (`store_tokens`). Unlike a failing poll (`app.runtime.mailbox_alerts`, told
after `MAILBOX_ALERT_MINUTES`), nothing will fix itself here, so admins are told at once:

* `tell_sign_in_needed(address_id)` claims the alert with one conditional UPDATE
  (`alerted_at` set only where it is NULL and the credential still needs a sign-in), so
  of all the polls, IDLE fetches and sends that meet the dead credential, exactly one
  mails the admins. A mail the relay refuses gives the claim back: the next sign-in
  attempt tries again, so the alert is never silently lost.
* `note_signed_in(credential)` clears `alerted_at` in the admin's sign-in transaction
  and, after its commit, mails the admins that the address is signed in again (only
  when they had been told it was not).

`sign_in_needed()` lists the live addresses waiting for a sign-in, with the provider's
words, for the admins' banner on every page (templates/_mailbox_alerts.html).
Everything here runs in sessions of its own: the caller's transaction (a poll in the
middle of a batch) is never committed or rolled back by an alert.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.channels import CredentialStatus, EmailAddress, OAuthCredential
from app.runtime.mailbox_alerts import mail_admins
from app.transactions import on_commit

log = logging.getLogger(__name__)

NEEDED = CredentialStatus.SIGN_IN_NEEDED.value
DEFAULT_WORDS = "the provider refused the stored sign-in"


def address_path(address_id: int) -> str:
    """Where an admin opens the address (its Edit page, with the sign-in); absolute when `PUBLIC_BASE_URL` is set."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}/channels/email/addresses/{address_id}/edit"


def sentence(address: str, words: str | None) -> str:
    """The words of the banner and the mail: what is wrong and what to do."""
    return (f"Sign-in needed for {address}: {(words or DEFAULT_WORDS).strip()} "
            "Open the address and press Sign in again.")


def tell_sign_in_needed(address_id: int) -> bool:
    """Mail the admins that this address needs a sign-in, unless they were told already; True when mailed now."""
    claimed_at = datetime.now(timezone.utc)
    with Session(db.engine) as session:
        claimed = session.execute(
            update(OAuthCredential)
            .where(OAuthCredential.address_id == address_id, OAuthCredential.status == NEEDED,
                   OAuthCredential.alerted_at.is_(None))
            .values(alerted_at=claimed_at)).rowcount
        session.commit()
        if not claimed:
            return False
        address, words = session.execute(
            select(EmailAddress.address, OAuthCredential.status_message)
            .join(OAuthCredential, OAuthCredential.address_id == EmailAddress.id)
            .where(EmailAddress.id == address_id)).one()
        session.rollback()
    body = (f"{sentence(address, words)}\n\n{address_path(address_id)}\n\n"
            "Until then Pigeonhole cannot fetch or send the mail of this address. New mail waits in the mailbox "
            "and replies wait in the queue; nothing is lost, and everything continues once an admin has signed "
            "in.\n\nYou will get one more message when it is signed in again.\n")
    if mail_admins(f"Sign-in needed for {address}", body):
        log.info("told the admins that address %s needs a sign-in", address_id)
        return True
    with Session(db.engine) as session:  # not told after all: the next attempt tries again
        session.execute(update(OAuthCredential).where(OAuthCredential.address_id == address_id,
                                                      OAuthCredential.alerted_at == claimed_at)
                        .values(alerted_at=None))
        session.commit()
    return False


def note_signed_in(credential: OAuthCredential, address_id: int) -> None:
    """An admin signed in (in the caller's transaction): end the episode; mail the all-clear after the commit."""
    if credential.alerted_at is None:
        return
    credential.alerted_at = None
    address = db.session.scalar(select(EmailAddress.address).where(EmailAddress.id == address_id))
    subject = f"{address} is signed in again"
    body = (f"{address} is signed in again: Pigeonhole fetches and sends its mail again, starting with what "
            f"waited meanwhile.\n\n{address_path(address_id)}\n")
    on_commit(mail_admins, subject, body)


@dataclass(frozen=True)
class SignInNeededAddress:
    address_id: int
    address: str
    message: str
    since: datetime


def sign_in_needed() -> list[SignInNeededAddress]:
    """Addresses (not archived) whose OAuth credential needs a sign-in, the longest waiting first."""
    rows = db.session.execute(
        select(EmailAddress.id, EmailAddress.address, OAuthCredential.status_message, OAuthCredential.updated_at)
        .join(OAuthCredential, OAuthCredential.address_id == EmailAddress.id)
        .where(OAuthCredential.status == NEEDED, EmailAddress.archived_at.is_(None))
        .order_by(OAuthCredential.updated_at, EmailAddress.address)).all()
    return [SignInNeededAddress(i, address, sentence(address, words), since) for i, address, words, since in rows]

"""Mailboxes failing for long: admins are told once, in the app and by mail, and once more when it works again.

Each mailbox's `MailboxState` keeps `failing_since` (the first failed poll of the current
run of failures; None once a poll works) and `alerted_at` (when admins were told):

* a poll fails: `failing_since` is set if it was not. Once it is `MAILBOX_ALERT_MINUTES`
  old and admins were not told yet, `alerted_at` is set and, after the poll's commit, the
  admins (active users with the admin role) get one mail through the platform relay
  (`SMTP_RELAY_URL`). A mail that cannot be sent clears `alerted_at` again, so the next
  failed poll tries again: the alert is never silently lost.
* a poll works: both are cleared and, if admins had been told, they get one mail saying
  it works again.

The poll's Redis lock makes each poll the only writer of its mailbox's state, so each
mail goes once, not once per poll. In the app, `failing_mailboxes()` lists the mailboxes
failing for longer than the setting, for the admins' banner on every page.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.auth import Role, User
from app.models.channels import EmailAddress, MailboxState
from app.runtime.live import PublishedAddress
from app.runtime.notices import send_notice

log = logging.getLogger(__name__)

Notice = Callable[[], None]


def _threshold() -> timedelta:
    return timedelta(minutes=float(current_app.config["MAILBOX_ALERT_MINUTES"]))


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def note_failure(address: PublishedAddress, state: MailboxState, error: str, now: datetime) -> Notice | None:
    """Record a failed poll on `state` (not committed); returns the alert to send after the commit, if one is due."""
    if state.failing_since is None:
        state.failing_since = now
    if state.alerted_at is not None or now - state.failing_since < _threshold():
        return None
    state.alerted_at = alerted = now
    since = state.failing_since
    minutes = int((now - since).total_seconds() // 60)
    subject = f"{address.address} has not fetched mail for {minutes} minutes"
    body = (f"Pigeonhole cannot fetch the mail of {address.address}: every poll since {_when(since)} failed.\n\n"
            f"The last error: {error}\n\n"
            "New mail waits in the mailbox; nothing is lost. Check the address's settings (Channels › Email, "
            "Edit, Test Connection) and publish the fix, or use Poll now on Ops › Inbound mail once the server "
            "is back.\n\nYou will get one more message when it works again.\n")
    state_id = state.id

    def send() -> None:
        if not mail_admins(subject, body):
            # Not told after all: the next failed poll tries again.
            db.session.execute(update(MailboxState).where(MailboxState.id == state_id,
                                                          MailboxState.alerted_at == alerted)
                               .values(alerted_at=None))
            db.session.commit()

    return send


def note_success(address: PublishedAddress, state: MailboxState, now: datetime) -> Notice | None:
    """Record a poll that worked on `state` (not committed); returns the all-clear to send after the commit, if due."""
    told, since = state.alerted_at is not None, state.failing_since
    state.failing_since = state.alerted_at = None
    if not told:
        return None
    subject = f"{address.address} fetches mail again"
    body = (f"{address.address} works again: the poll at {_when(now)} fetched its mail "
            f"(it had failed since {_when(since)}). Mail that arrived meanwhile is being delivered to agents now.\n")
    return lambda: mail_admins(subject, body) and None


def mail_admins(subject: str, body: str) -> bool:
    """Send a plain-text notice to every active admin through the platform relay; True when it was accepted.

    Never raises: a missing relay, no admins or a refusal are logged and give False.
    """
    # A session of its own, closed before we talk to the relay: the caller's transaction is left alone.
    with Session(db.engine) as session:
        recipients = list(session.scalars(select(User.email).where(User.role == Role.ADMIN.value,
                                                                   User.active.is_(True)).order_by(User.email)))
    if not recipients:
        log.warning("cannot mail the admins (no admin): %s", subject)
        return False
    return send_notice(recipients, subject, body)


@dataclass(frozen=True)
class FailingMailbox:
    address_id: int
    address: str
    failing_since: datetime
    last_error: str | None


def failing_mailboxes(now: datetime | None = None) -> list[FailingMailbox]:
    """Live mailboxes whose polls have failed for longer than `MAILBOX_ALERT_MINUTES`, longest first."""
    cutoff = (now or datetime.now(timezone.utc)) - _threshold()
    rows = db.session.execute(
        select(MailboxState.address_id, EmailAddress.address, MailboxState.failing_since, MailboxState.last_error)
        .join(EmailAddress, EmailAddress.id == MailboxState.address_id)
        .where(MailboxState.failing_since <= cutoff, EmailAddress.archived_at.is_(None),
               EmailAddress.published.is_not(None))
        .order_by(MailboxState.failing_since, EmailAddress.address)).all()
    return [FailingMailbox(*row) for row in rows]

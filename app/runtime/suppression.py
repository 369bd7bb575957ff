"""Bounce suppression: addresses whose mail bounced, which the composer warns about and automation skips.

Ingest hands every delivery report that names one of our outgoing messages to
`record_report` (in the report's own transaction). Each failed recipient of the report
that the outgoing message was really sent to (To, Cc or Bcc; or the DSN's
Original-Recipient when the final one is a forwarding target) is noted on the
suppression list (`app.models.suppression.Suppression`), classed by
`app.mail.bounce.status.failure_class`:

* a **hard** bounce (a final failure with a 5.x.x status) suppresses the address at once;
* a **soft** bounce (a final failure with a 4.x.x status, or with none) is counted; when
  SOFT_BOUNCE_LIMIT of them fall within SOFT_BOUNCE_WINDOW_DAYS the address is suppressed
  too. A delayed report (Action: delayed) is not a bounce and counts for nothing.

A report that names no outgoing message of ours, or a recipient we never wrote to,
suppresses nobody: anyone can send a report, and a forged one must not silence a customer.

Readers: `suppressed_among` (the composer's warning and its Send confirmation),
`suppression_of` (automatic mail skips the address, `app.flows.safety`), `search` (Ops ›
Suppressions). `clear` (admins) lifts a suppression and resets the soft count; sending to
a suppressed address anyway is allowed and clears nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.utils import getaddresses

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.extensions import begin_nested, db
from app.mail.bounce import Bounce
from app.mail.bounce.status import HARD, SOFT, failure_class, status_meaning
from app.models._types import utcnow
from app.models.inbox import Message
from app.models.suppression import Suppression

log = logging.getLogger(__name__)


def record_report(bounce: Bounce, outgoing: Message | None, report: Message, now: datetime) -> list[Suppression]:
    """Note the report's failed recipients on the suppression list; the rows it touched.

    Does nothing for a report that is not a final failure or names no outgoing message of
    ours; skips (logged) a recipient the outgoing message was not sent to. Flushes, never commits.
    """
    if outgoing is None or not bounce.failed:
        return []
    sent_to = {addr.lower() for _, addr in getaddresses([outgoing.to_addrs or "", outgoing.cc_addrs or "",
                                                         outgoing.bcc_addrs or ""]) if addr}
    touched = []
    for recipient in bounce.recipients:
        failure = bounce.failure_of(recipient)
        address = next((a for a in (recipient.lower(), (failure.original_recipient or "").lower()) if a in sent_to),
                       None)
        if address is None:
            log.info("delivery report %s names %s, to whom message %s was not sent: not suppressed",
                     report.id, recipient, outgoing.id)
            continue
        kind = failure_class(bounce.kind, failure.status)
        if kind is None:
            continue
        touched.append(_note(address, kind, failure.status, failure.diagnostic, report.id, outgoing.id, now))
    return touched


def _note(email: str, kind: str, status: str | None, reason: str, report_id: int, outgoing_id: int,
          now: datetime) -> Suppression:
    row = db.session.scalar(select(Suppression).where(Suppression.email == email).with_for_update())
    if row is None:
        savepoint = begin_nested()
        try:
            row = Suppression(email=email, kind=kind, first_bounce_at=now, last_bounce_at=now,
                              soft_bounce_count=0, soft_bounce_times=[], reason="")
            db.session.add(row)
            db.session.flush()
            savepoint.commit()
        except IntegrityError:  # noted by another worker a moment ago
            savepoint.rollback()
            row = db.session.scalar(select(Suppression).where(Suppression.email == email).with_for_update())
    row.last_bounce_at = now
    if not (kind == SOFT and row.kind == HARD and row.suppressed_at is not None):
        # (a soft bounce after a hard one leaves the hard reason in place: it is why the address is suppressed)
        row.kind, row.status, row.reason = kind, (status or None), (reason or "")[:2000]
        row.source_message_id, row.outgoing_message_id = report_id, outgoing_id
    if kind == HARD:
        if row.suppressed_at is None:
            row.suppressed_at = now
            log.info("%s suppressed: hard bounce %s", email, status)
    else:
        since = now - timedelta(days=current_app.config["SOFT_BOUNCE_WINDOW_DAYS"])
        recent = [t for t in row.soft_bounce_times or [] if datetime.fromisoformat(t) > since]
        row.soft_bounce_times = recent + [now.isoformat()]  # a new list: JSON columns see assignments only
        row.soft_bounce_count = len(row.soft_bounce_times)
        if row.suppressed_at is None and row.soft_bounce_count >= current_app.config["SOFT_BOUNCE_LIMIT"]:
            row.suppressed_at = now
            log.info("%s suppressed: %d soft bounces within %d days", email, row.soft_bounce_count,
                     current_app.config["SOFT_BOUNCE_WINDOW_DAYS"])
    db.session.flush()
    return row


# --- readers ------------------------------------------------------------------------------------

def suppressed_among(emails) -> dict[str, Suppression]:
    """The suppressed ones of these addresses (compared lower-cased), keyed by lower-cased address."""
    wanted = sorted({(e or "").strip().lower() for e in emails if e and "@" in e})
    if not wanted:
        return {}
    rows = db.session.scalars(select(Suppression).where(Suppression.email.in_(wanted),
                                                        Suppression.suppressed_at.is_not(None)))
    return {row.email: row for row in rows}


def suppression_of(email: str) -> Suppression | None:
    return suppressed_among([email]).get((email or "").strip().lower())


def describe(row: Suppression) -> str:
    """One line for agents and logs: "Mail to x bounced on 27 Nov 2026: mailbox does not exist (5.1.1)"."""
    why = status_meaning(row.status) or _first_line(row.reason) or "the receiving server refused it"
    code = f" ({row.status})" if row.status else ""
    if row.kind == SOFT:
        times = "once" if row.soft_bounce_count == 1 else f"{row.soft_bounce_count} times"
        return (f"Mail to {row.email} bounced {times}, last on "
                f"{row.last_bounce_at:%d %b %Y}: {why}{code}")
    return f"Mail to {row.email} bounced on {row.last_bounce_at:%d %b %Y}: {why}{code}"


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""


def search(q: str = "", limit: int = 200) -> list[Suppression]:
    """Suppressed addresses, newest bounce first; `q` matches the address or the reason."""
    query = select(Suppression).where(Suppression.suppressed_at.is_not(None))
    q = (q or "").strip().lower()
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Suppression.email.like(pattern, escape="\\"),
                                func.lower(Suppression.reason).like(pattern, escape="\\"),
                                Suppression.status.like(pattern, escape="\\")))
    return list(db.session.scalars(query.order_by(Suppression.last_bounce_at.desc(), Suppression.id.desc())
                                   .limit(limit)))


def clear(suppression_id: int, user_id: int | None) -> Suppression:
    """Lift a suppression (an admin's "Clear"): mail to the address goes out without a warning again.

    The row stays with its history (who cleared it, when); the soft count starts again from
    zero, and the next bounce that counts suppresses anew. Raises LookupError for an unknown
    id or one that is not suppressed.
    """
    row = db.session.get(Suppression, suppression_id)
    if row is None or row.suppressed_at is None:
        raise LookupError(suppression_id)
    row.suppressed_at = None
    row.soft_bounce_times, row.soft_bounce_count = [], 0
    row.cleared_at, row.cleared_by_id = utcnow(), user_id
    db.session.flush()
    log.info("suppression of %s cleared by user %s", row.email, user_id)
    return row

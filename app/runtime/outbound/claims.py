"""Claims and outcomes: the lease that makes delivery exactly-once.

A send job claims messages (`claim`: state `sending`, its token, a lease; committed
before any byte goes to the server), marks each attempt just before it talks to the
server (`begin_attempt`: one more attempt, `last_attempt_at`), then writes each outcome
only while the claim is still its own (`finish`, `record_sent`, `record_failure`), or
gives untried messages back (`release`).

Attempts are counted honestly: a claim is not an attempt, so messages claimed in a
batch by a worker that died before reaching them show the attempts really made. The
one window SMTP leaves open is between the server's 250 after DATA and our commit of
it; when a claim's lease expired after an attempt had begun under it, the next claimer
cannot know whether the server took the message, sends it again, and records a
possible duplicate on the conversation's trail (`_note_possible_duplicates`).
"""
from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import bindparam, case, select, update

from app.extensions import db
from app.mail.smtp import DeliveryError, SendResult
from app.models._types import utcnow
from app.models.inbox import Message
from app.runtime import metrics
from app.runtime.trail import record_event
from app.transactions import on_commit
from app.runtime.outbound.states import FAILED, QUEUED, RETRYING, SENDING, SENT, claimable

log = logging.getLogger(__name__)


def claim(ids: list[int], token: str) -> list[int]:
    """Claim these messages for us (those still claimable) and commit; returns the ids we got."""
    if not ids:
        return []
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    interrupted = _interrupted_attempts(ids, now, lease)
    db.session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.direction == "out", claimable(now))
        .values(delivery_status=SENDING, claim_token=token, claimed_until=now + lease),
        execution_options={"synchronize_session": False},
    )
    got = set(db.session.scalars(select(Message.id).where(Message.id.in_(ids), Message.claim_token == token)))
    _note_possible_duplicates([row for row in interrupted if row.id in got])
    db.session.commit()
    return [i for i in ids if i in got]


def begin_attempt(message_id: int, token: str) -> bool:
    """Count one attempt on a message we hold and commit it, just before talking to the server.

    From this commit until the outcome's, a worker that dies leaves a message the server may
    have taken: the next claimer records a possible duplicate. False if the claim is no longer ours.
    """
    result = db.session.execute(
        update(Message).where(Message.id == message_id, Message.claim_token == token)
        .values(delivery_attempts=Message.delivery_attempts + 1, last_attempt_at=utcnow()),
        execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount == 1


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _interrupted_attempts(ids: list[int], now: datetime, lease: timedelta) -> list:
    """Messages among `ids` whose lease ran out after an attempt had begun under it (their worker died).

    An attempt began under a claim when `last_attempt_at` is at or after the claim's start
    (`claimed_until` less the lease); an outcome would have cleared the claim.
    """
    rows = db.session.execute(
        select(Message.id, Message.conversation_id, Message.last_attempt_at, Message.claimed_until)
        .where(Message.id.in_(ids), Message.delivery_status == SENDING,
               Message.claimed_until.is_not(None), Message.claimed_until < now,
               Message.last_attempt_at.is_not(None))).all()
    return [row for row in rows if _as_utc(row.last_attempt_at) >= _as_utc(row.claimed_until) - lease]


def _note_possible_duplicates(rows: list) -> None:
    for row in rows:
        log.warning("message %s: its last attempt was interrupted after it began; sending it again may "
                    "deliver it twice", row.id)
        record_event(row.conversation_id, "automation",
                     "A reply may reach its recipients twice: the worker sending it stopped after handing it "
                     "to the mail server and before recording the server's answer, so it was sent again.",
                     message_id=row.id, possible_duplicate=True)


def backoff_seconds(attempts: int) -> float:
    """Wait before attempt `attempts + 1`: base × 2^(attempts-1), capped, ±10 % jitter."""
    cfg = current_app.config
    delay = min(cfg["SEND_RETRY_BASE_SECONDS"] * 2 ** max(0, attempts - 1), cfg["SEND_RETRY_MAX_SECONDS"])
    return delay * random.uniform(0.9, 1.1)


# A Core UPDATE built once, its SET clause made of the columns passed: it runs once per message sent.
_FINISH = Message.__table__.update().where(Message.__table__.c.id == bindparam("finish_id"),
                                           Message.__table__.c.claim_token == bindparam("finish_token"))


def finish(message_id: int, token: str, **values) -> bool:
    """Write an outcome if the claim is still ours (it is, unless our lease ran out)."""
    values.update(claim_token=None, claimed_until=None, last_attempt_at=utcnow(),
                  finish_id=message_id, finish_token=token)
    # On the session's connection (its transaction), past the ORM layer, which has nothing to do for it.
    result = db.session.connection().execute(_FINISH, values)
    if result.rowcount != 1:
        log.warning("message %s: our claim was taken over before the outcome was recorded", message_id)
        return False
    return True


def record_sent(message_id: int, token: str, result: SendResult, dkim_signature: str | None = None) -> None:
    refused = "; ".join(f"{addr}: {code} {text}" for addr, (code, text) in result.refused.items())
    sent_at = utcnow()
    if finish(message_id, token, delivery_status=SENT, sent_at=sent_at, smtp_code=result.code,
              dkim_signature=dkim_signature, smtp_reply=result.text[:4000], next_attempt_at=None,
              delivery_error=f"Not accepted for {refused}"[:4000] if refused else None):
        queued = db.session.scalar(select(Message.created_at).where(Message.id == message_id))
        on_commit(metrics.observe_send, SENT, _seconds_between(queued, sent_at))


def failure_outcome(attempts: int, error: DeliveryError) -> dict:
    """The delivery columns after a failed attempt: retrying with backoff (temporary, attempts left) or failed."""
    limit = current_app.config["SEND_MAX_ATTEMPTS"]
    words = str(error)[:4000]
    if error.temporary and attempts < limit:
        status, next_at = RETRYING, utcnow() + timedelta(seconds=backoff_seconds(attempts))
    else:
        status, next_at = FAILED, None
        if error.temporary:
            words = f"{words} (gave up after {attempts} attempts)"[:4000]
    return dict(delivery_status=status, next_attempt_at=next_at, smtp_code=error.code,
                smtp_reply=error.text[:4000] if error.code else None, delivery_error=words)


def record_failure(message_id: int, token: str, attempts: int, error: DeliveryError) -> str:
    """Record a failed attempt; `attempts`: the message's attempts, this one included."""
    outcome = failure_outcome(attempts, error)
    outcome["delivery_attempts"] = attempts
    if finish(message_id, token, **outcome):
        on_commit(metrics.observe_send, outcome["delivery_status"])
    return outcome["delivery_status"]


def _seconds_between(earlier: datetime | None, later: datetime) -> float | None:
    if earlier is None:
        return None
    if earlier.tzinfo is None:  # SQLite gives naive UTC back
        earlier = earlier.replace(tzinfo=timezone.utc)
    if later.tzinfo is None:
        later = later.replace(tzinfo=timezone.utc)
    return (later - earlier).total_seconds()


def release(message_ids: list[int], token: str) -> None:
    """Give back claimed messages that were not tried: as they were, due now (a claim is no attempt)."""
    db.session.execute(
        update(Message).where(Message.id.in_(message_ids), Message.claim_token == token)
        .values(delivery_status=case((Message.delivery_attempts < 1, QUEUED), else_=RETRYING),
                claim_token=None, claimed_until=None),
        execution_options={"synchronize_session": False})
    db.session.commit()

"""Claims and outcomes: the lease that makes delivery exactly-once.

A send job claims messages (`claim`: state `sending`, its token, a lease, one more
attempt; committed before any byte goes to the server), then writes each outcome only
while the claim is still its own (`finish`, `record_sent`, `record_failure`), or gives
untried messages back (`release`).
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
from app.transactions import on_commit
from app.runtime.outbound.states import FAILED, QUEUED, RETRYING, SENDING, SENT, claimable

log = logging.getLogger(__name__)


def claim(ids: list[int], token: str) -> list[int]:
    """Claim these messages for us (those still claimable) and commit; returns the ids we got."""
    if not ids:
        return []
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    db.session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.direction == "out", claimable(now))
        .values(delivery_status=SENDING, claim_token=token, claimed_until=now + lease,
                delivery_attempts=Message.delivery_attempts + 1),
        execution_options={"synchronize_session": False},
    )
    got = set(db.session.scalars(select(Message.id).where(Message.id.in_(ids), Message.claim_token == token)))
    db.session.commit()
    return [i for i in ids if i in got]


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
    outcome = failure_outcome(attempts, error)
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
    """Give back claimed messages that were not tried: as they were, due now, the attempt not counted."""
    db.session.execute(
        update(Message).where(Message.id.in_(message_ids), Message.claim_token == token)
        .values(delivery_status=case((Message.delivery_attempts <= 1, QUEUED), else_=RETRYING),
                delivery_attempts=Message.delivery_attempts - 1, claim_token=None, claimed_until=None),
        execution_options={"synchronize_session": False})
    db.session.commit()

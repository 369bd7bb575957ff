"""The delivery states of an outgoing message (`Message.delivery_status`), declared once.

The other modules ask this table which states a send job may claim and which one an
agent may send again; the package docstring draws the transitions.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import and_, or_

from app.models.inbox import Message


class DeliveryStatus(str, enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    BOUNCED = "bounced"  # set by inbound bounce handling (`mark_bounced`)


QUEUED, SENDING, SENT, RETRYING, FAILED, BOUNCED = (s.value for s in DeliveryStatus)

#: Waiting for an attempt: claimable once `next_attempt_at` has passed.
WAITING_STATES = (QUEUED, RETRYING)
#: Held by a send job under a lease: claimable again once `claimed_until` has passed (its worker died).
LEASED_STATE = SENDING
#: Not final yet: the conversation page keeps asking for the status of a message in these.
IN_PROGRESS = (*WAITING_STATES, LEASED_STATE)
#: The one state an agent may send again by hand (`retry_message`); the others move on by themselves
#: or, once sent or bounced, stay.
RETRYABLE_BY_HAND = FAILED


def claimable(now: datetime, model=Message):
    """The SQL condition of an outgoing message that a send job may claim at `now`.

    `model` is `Message` or another table with the same delivery columns (`SendTest`).
    """
    return or_(
        and_(model.delivery_status.in_(WAITING_STATES),
             or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now)),
        and_(model.delivery_status == LEASED_STATE,
             or_(model.claimed_until.is_(None), model.claimed_until < now)),
    )

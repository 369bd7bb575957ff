"""Forwarding of a platform address: its status read from inbound mail, and dismissing a confirmation.

A platform address receives mail only when the contact center forwards its mailbox to it
(DESIGN.md). `forwarding_status(ids)` answers "is it forwarded yet?" per address from what
arrived: the newest arrival whose headers name the address it was forwarded from
(`InboundRaw.forwarded_for`, written by ingest), else the newest arrival at all (mail sent
straight to the platform address), else nothing. The provider's confirmation mails themselves
are kept by ingest (`app.runtime.forwarding`); `dismiss_confirmation` hides one once handled.

Services flush, never commit; they raise `LookupError` for an unknown confirmation.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.extensions import db
from app.models._types import utcnow
from app.models.inbound import ForwardingConfirmation, InboundRaw, InboundStatus

#: Arrivals that say nothing about forwarding: not received yet, or the provider's own confirmation mail.
_NOT_EVIDENCE = (InboundStatus.PENDING.value, InboundStatus.FORWARDING_CONFIRMATION.value)


@dataclass(frozen=True)
class ForwardingStatus:
    """What arrived at one platform address: forwarded mail (from whom, when), or mail sent straight to it."""

    forwarded_from: str | None = None
    forwarded_at: datetime | None = None
    direct_at: datetime | None = None   # the newest arrival showing no forwarder, when nothing forwarded came

    @property
    def forwarded(self) -> bool:
        return self.forwarded_at is not None


def forwarding_status(address_ids: list[int]) -> dict[int, ForwardingStatus]:
    """The status of each address (one `ForwardingStatus()`, "nothing received yet", when nothing arrived)."""
    if not address_ids:
        return {}
    statuses = {i: ForwardingStatus() for i in address_ids}
    newest_forwarded = (select(func.max(InboundRaw.id))
                        .where(InboundRaw.address_id.in_(address_ids), InboundRaw.forwarded_for.is_not(None),
                               InboundRaw.status.not_in(_NOT_EVIDENCE))
                        .group_by(InboundRaw.address_id))
    for address_id, who, at in db.session.execute(
            select(InboundRaw.address_id, InboundRaw.forwarded_for, InboundRaw.received_at)
            .where(InboundRaw.id.in_(newest_forwarded))):
        statuses[address_id] = ForwardingStatus(forwarded_from=who, forwarded_at=at)
    rest = [i for i, s in statuses.items() if not s.forwarded]
    if rest:
        for address_id, at in db.session.execute(
                select(InboundRaw.address_id, func.max(InboundRaw.received_at))
                .where(InboundRaw.address_id.in_(rest), InboundRaw.status.not_in(_NOT_EVIDENCE))
                .group_by(InboundRaw.address_id)):
            statuses[address_id] = ForwardingStatus(direct_at=at)
    return statuses


def dismiss_confirmation(confirmation_id: int, user_id: int) -> ForwardingConfirmation:
    """Hide a confirmation from the banner and the Forwarding page (kept, with who dismissed it and when).

    Raises `LookupError` when there is no such confirmation. Dismissing twice is harmless.
    """
    row = db.session.get(ForwardingConfirmation, confirmation_id)
    if row is None:
        raise LookupError(f"no forwarding confirmation {confirmation_id}")
    if row.dismissed_at is None:
        row.dismissed_at = utcnow()
        row.dismissed_by_id = user_id
        db.session.flush()
    return row

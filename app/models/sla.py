"""Service levels: SLA policies per queue (optionally per priority and tag).

A conversation's own due times live on `Conversation` (``sla_*`` columns; docs/sla.md lists
them); `app.runtime.sla` keeps them up to date and the cron sweep sends the notices (`Notification`).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class SlaPolicy(db.Model):
    """Targets for a queue's conversations, in business minutes of the queue's calendar.

    `priority` / `tag` None: any. The most specific matching policy wins (priority and tag, then
    one of them, then neither; the lowest id breaks ties). A target None: not measured.
    """
    __tablename__ = "sla_policies"
    __table_args__ = (Index("ix_sla_policies_queue", "queue_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[int | None]
    tag: Mapped[str | None] = mapped_column(String(50))
    first_response_minutes: Mapped[int | None]
    next_response_minutes: Mapped[int | None]
    resolution_minutes: Mapped[int | None]
    warning_minutes: Mapped[int | None]  # None: the SLA_WARNING_MINUTES setting
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    queue = relationship("Queue")

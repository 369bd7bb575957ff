"""A user's in-app notifications, all of them in one table, read on one page (Notifications) with one badge.

`kind` says what it is about (`KINDS`): an `@mention` in an internal note (`app.inbox.notes`, one row
per user and note, with the note as `message_id`); a conversation at risk or overdue (the SLA's
cron sweep, `app.runtime.sla.notify_due`); a timed rule's notice (`app.flows.timers`: taken back by
Agent Inactivity, a reminder before Auto Expire); a queue's alert or its recovery (`app.flows.alerts`,
to every supervisor and admin; no conversation). Read when the user opens it or marks it read; the
header's badge counts the unread ones.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


#: The kinds of notification, with their names on the Notifications page.
KINDS = {
    "mention": "Mention",
    "at_risk": "At risk",
    "overdue": "Overdue",
    "timer": "Timer",
    "alert": "Alert",
}


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="mention")
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    actor = relationship("User", foreign_keys=[actor_id])
    conversation = relationship("Conversation")

"""The signed-in user's notifications, every kind in one list (`app.models.notifications.KINDS`): @mentions,
service levels at risk or overdue, timers, queue alerts. The Notifications page and the header's one unread
badge read them here; each user reads and marks only their own. The caller commits.
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.inbox.access import can_see
from app.models._types import utcnow
from app.models.auth import User
from app.models.notifications import Notification


def unread_count(user: User) -> int:
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def list_notifications(user: User, limit: int = 50) -> list[Notification]:
    """The user's newest notifications, unread first; those about a conversation only while the user may see it."""
    rows = db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                              .order_by(Notification.read_at.is_not(None), Notification.created_at.desc(),
                                        Notification.id.desc()).limit(limit)).all()
    return [n for n in rows if n.conversation_id is None or can_see(user, n.conversation)]


def mark_read(user: User, notification_id: int | None = None) -> int:
    """Mark one notification of `user` (or all of them) read; returns how many changed."""
    stmt = select(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    rows = db.session.scalars(stmt).all()
    now = utcnow()
    for n in rows:
        n.read_at = now
    return len(rows)

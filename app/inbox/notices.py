"""An agent's in-app notices (service levels: "First response due in 10 min", "… overdue"), newest first.

The cron sweep (`app.runtime.sla.notify_due`) writes them; the agent reads them on `/inbox/notices`
and marks them read there. The caller commits.
"""
from __future__ import annotations

from sqlalchemy import func, select, update

from app.extensions import db
from app.models._types import utcnow
from app.models.sla import AgentNotice

LIMIT = 100


def notices_of(user_id: int, limit: int = LIMIT) -> list[AgentNotice]:
    return list(db.session.scalars(select(AgentNotice).where(AgentNotice.user_id == user_id)
                                   .order_by(AgentNotice.created_at.desc(), AgentNotice.id.desc()).limit(limit)))


def unread_count(user_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(AgentNotice).where(
        AgentNotice.user_id == user_id, AgentNotice.read_at.is_(None))) or 0


def mark_all_read(user_id: int) -> int:
    """Mark the user's unread notices read; returns how many."""
    return db.session.execute(update(AgentNotice).where(AgentNotice.user_id == user_id,
                                                        AgentNotice.read_at.is_(None))
                              .values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount

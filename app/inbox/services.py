"""Reading and changing conversations. The workspace issue grows this module."""
from __future__ import annotations

from sqlalchemy import or_, select

from app.extensions import db
from app.models.auth import Role, User, queue_members
from app.models.inbox import Conversation


def visible_conversations(user: User, limit: int = 50) -> list[Conversation]:
    """Newest first; agents see their queues' conversations and those assigned to them."""
    query = select(Conversation).order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
    if not user.has_role(Role.SUPERVISOR):
        my_queues = select(queue_members.c.queue_id).where(queue_members.c.user_id == user.id)
        query = query.where(or_(Conversation.assignee_id == user.id, Conversation.queue_id.in_(my_queues)))
    return list(db.session.scalars(query.limit(limit)))


def can_see_conversation(user: User, conversation: Conversation) -> bool:
    """The rule of `visible_conversations` for one conversation (supervisors see all)."""
    if user.has_role(Role.SUPERVISOR) or conversation.assignee_id == user.id:
        return True
    return conversation.queue_id is not None and conversation.queue_id in {q.id for q in user.queues}

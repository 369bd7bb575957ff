"""Suggestions while the agent types a recipient: known people by address or name.

Only people the agent could already see are suggested: the customers of conversations
they may open (`app.inbox.access.visibility_filter`) and their colleagues (active users
who share a queue with them). A supervisor or admin, who sees every conversation, gets
every contact and every active user. A customer who wrote only to another queue is
never offered, so the suggestions cannot tell an agent who writes to that queue.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select

from app.extensions import db
from app.inbox.access import get_user, member_queue_ids, visibility_filter
from app.models.auth import User, queue_members
from app.models.inbox import Contact, Conversation


@dataclass(frozen=True)
class Suggestion:
    email: str
    name: str


def _like(prefix: str):
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def suggest_contacts(user: User | int, q: str, limit: int = 8) -> list[Suggestion]:
    """People whose address or name starts with `q` (at least 2 characters) that `user` may see,
    by address; raises `NotFound` for an unknown user."""
    user = get_user(user)
    q = (q or "").strip().lower()
    if len(q) < 2:
        return []
    prefix = _like(q)
    contacts = select(Contact.email, Contact.name).where(or_(
        Contact.email.like(prefix, escape="\\"), func.lower(Contact.name).like(prefix, escape="\\")))
    colleagues = select(User.email, User.name).where(User.active.is_(True), or_(
        func.lower(User.email).like(prefix, escape="\\"), func.lower(User.name).like(prefix, escape="\\")))
    visible = visibility_filter(user)
    if visible is not None:
        contacts = contacts.where(Contact.id.in_(select(Conversation.contact_id).where(visible)))
        colleagues = colleagues.where(or_(User.id == user.id, User.id.in_(
            select(queue_members.c.user_id).where(queue_members.c.queue_id.in_(member_queue_ids(user))))))
    found: dict[str, Suggestion] = {}
    for rows in (db.session.execute(contacts.order_by(Contact.email).limit(limit)),
                 db.session.execute(colleagues.order_by(User.email).limit(limit))):
        for email, name in rows:
            found.setdefault(email.lower(), Suggestion(email, name or ""))
    return [found[key] for key in sorted(found)][:limit]

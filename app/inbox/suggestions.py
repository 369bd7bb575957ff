"""Suggestions while the agent types a recipient: known contacts by address or name."""
from __future__ import annotations

from sqlalchemy import func, or_, select

from app.extensions import db
from app.inbox.access import get_user
from app.models.auth import User
from app.models.inbox import Contact


def suggest_contacts(user: User | int, q: str, limit: int = 8) -> list[Contact]:
    """Known contacts whose address or name starts with `q` (at least 2 characters)."""
    get_user(user)
    q = (q or "").strip().lower()
    if len(q) < 2:
        return []
    prefix = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(db.session.scalars(
        select(Contact).where(or_(Contact.email.like(prefix, escape="\\"),
                                  func.lower(Contact.name).like(prefix, escape="\\")))
        .order_by(Contact.email).limit(limit)))

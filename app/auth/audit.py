"""The audit log of account changes: who did what to which account, when.

Every change to an account is recorded here by the service that makes it, in the same
transaction: created, edited, role or queues changed, deactivated, reactivated, password
changed, reset link made or used, signed out everywhere, profile edited. `details` says what
changed (old and new values of plain fields, queue names, how many sessions ended) and never
holds a secret: no password, hash, token or link. Admins read it on Admin › Audit log; entries
are never edited or deleted (a deleted actor's entries keep their text with no link).
"""
from __future__ import annotations

from sqlalchemy import or_, select

from app.extensions import db
from app.models.auth import AuditEntry, User

#: Each action and how the audit log says it.
ACTIONS = {
    "create": "Account created",
    "edit": "Account edited",
    "role_change": "Role changed",
    "queues_change": "Queues changed",
    "deactivate": "Deactivated",
    "reactivate": "Reactivated",
    "password_change": "Password changed",
    "password_reset_link": "Password reset link made",
    "password_reset": "Password set with a reset link",
    "sign_out_everywhere": "Signed out everywhere",
    "profile_edit": "Profile edited",
}
#: Keys that must never reach `details` (a mistake in a caller raises instead of storing a secret).
SECRET_KEYS = frozenset({"password", "password_hash", "token", "link", "url", "secret"})
PAGE_SIZE = 50


def record(action: str, target: User | None, actor: User | None = None, **details) -> AuditEntry:
    """Add one entry (the caller commits). `actor` None: the command line or the system."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    leaked = SECRET_KEYS & set(details)
    if leaked:
        raise ValueError(f"audit details may not hold {sorted(leaked)}")
    entry = AuditEntry(action=action, actor_id=actor.id if actor is not None else None,
                       target_user_id=target.id if target is not None else None, details=details)
    db.session.add(entry)
    return entry


def entries(user_id: int | None = None, before_id: int | None = None, limit: int = PAGE_SIZE) -> list[AuditEntry]:
    """Newest first; with `user_id`, the entries about that user or made by them; `before_id` pages on."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(or_(AuditEntry.target_user_id == user_id, AuditEntry.actor_id == user_id))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(db.session.scalars(query))

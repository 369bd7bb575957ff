"""One-time password-reset links: made by an admin, used once by the account's owner.

The link carries a random token (256 bits); the database keeps only its SHA-256, so the link
cannot be read back from the database or a backup, and the admin sees it once. A link works
once, for `PASSWORD_RESET_HOURS`, only while it is the user's newest one and while the account
is active. Using it sets a password that passes `password_rules`, ends every session of the
user (every browser, every "Keep me signed in") and is recorded in the audit log.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select, update

from app.auth import audit, passwords, sessions
from app.auth.password_rules import check_new_password
from app.extensions import db
from app.models.auth import PasswordReset, User


class InvalidLink(Exception):
    """The link is unknown, used, replaced by a newer one, expired, or its account is deactivated."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(user: User, actor: User | None) -> str:
    """A new one-time token for `user` (earlier unused links stop working). The caller commits.

    Raises `ValueError` for a deactivated account (reactivate it first).
    """
    if not user.active:
        raise ValueError("Reactivate the account before making a reset link.")
    now = _now()
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                       .values(used_at=now))
    token = secrets.token_urlsafe(32)
    hours = valid_hours()
    db.session.add(PasswordReset(user_id=user.id, token_hash=_hash(token), created_at=now,
                                 expires_at=now + timedelta(hours=hours), created_by_id=actor.id if actor else None))
    audit.record("password_reset_link", user, actor, valid_hours=hours)
    return token


def find_link(token: str) -> PasswordReset:
    """The usable link with `token`. Raises `InvalidLink`."""
    row = db.session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _hash(token or "")))
    if row is None or row.used_at is not None or row.expires_at <= _now():
        raise InvalidLink()
    user = db.session.get(User, row.user_id)
    if user is None or not user.active:
        raise InvalidLink()
    return row


def use_link(token: str, new_password: str) -> User:
    """Set the password of the link's user, end all their sessions, spend the link. The caller commits.

    Raises `InvalidLink`, `WeakPassword` (the link stays usable), `HashingBusy`.
    """
    row = find_link(token)
    user = db.session.get(User, row.user_id)
    check_new_password(new_password, user.email)
    with passwords.hashing_slot():
        password_hash = passwords.hash_password(new_password)
    spent = db.session.execute(update(PasswordReset).where(PasswordReset.id == row.id, PasswordReset.used_at.is_(None))
                               .values(used_at=_now())).rowcount
    if not spent:  # the same link used twice at once: only one wins
        raise InvalidLink()
    user.password_hash = password_hash
    ended = sessions.end_sessions(user.id)
    audit.record("password_reset", user, user, sessions_ended=ended)
    return user


def valid_hours() -> int:
    """How many hours a new link works."""
    return current_app.config["PASSWORD_RESET_HOURS"]

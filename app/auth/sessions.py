"""Server-side sign-in sessions and "Keep me signed in", both revocable.

Each sign-in on a browser is a `UserSession` row. The browser holds its key in the signed
session cookie (`session["_sid"]`); a request is signed in only while that row exists and has
not expired, so deleting the row signs the browser out at once, whatever cookie it replays.
Sign out deletes the browser's row; "Sign out everywhere" and a password change delete the
user's rows (a change keeps the browser that made it).

"Keep me signed in" is a second cookie, `<key>.<secret>`, whose secret's hash is on the same
row. When it signs a browser in again (its session cookie gone), the secret rotates: the
browser gets a new one and the old one stops working, but for `ROTATION_GRACE` seconds (pages
that sent several requests at once with the old cookie). A secret that matches neither is a
copy used after its owner moved on, or the other way round: the row is deleted, which signs out
both. The database holds only SHA-256 hashes of keys and secrets.

Flask-Login still keeps `_user_id` in the session and calls `load_user`; its own remember
cookie is never set (sign-in passes `remember=False`).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from flask import Flask, current_app, g, request, session
from sqlalchemy import delete, select

from app.extensions import db, login
from app.models.auth import User, UserSession

#: The "Keep me signed in" cookie (not Flask-Login's `remember_token`, which is never set).
REMEMBER_COOKIE = "pigeonhole_remember"
#: Where the session cookie keeps the session's key.
SESSION_KEY = "_sid"
#: Seconds a rotated remember secret is still accepted (without rotating again).
ROTATION_GRACE = 60


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def start_session(user: User, *, remember: bool, client_address: str | None, user_agent: str | None) -> tuple[str, str | None]:
    """A new session of `user`: returns its key (for the session cookie) and, with `remember`,
    the remember cookie's value. The caller commits. Expired sessions of the user go."""
    now = _now()
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    key = secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(32) if remember else None
    cfg = current_app.config
    lifetime = timedelta(days=cfg["REMEMBER_DAYS"]) if remember else timedelta(hours=cfg["SESSION_HOURS"])
    db.session.add(UserSession(user_id=user.id, key_hash=_hash(key), remember_hash=secret and _hash(secret),
                               rotated_at=now if remember else None, created_at=now, expires_at=now + lifetime,
                               client_address=(client_address or "")[:64], user_agent=(user_agent or "")[:300]))
    return key, secret and f"{key}.{secret}"


def end_session(key: str | None) -> None:
    """Delete the session with `key` (no error if it is gone). The caller commits."""
    if key:
        db.session.execute(delete(UserSession).where(UserSession.key_hash == _hash(key)))


def end_sessions(user_id: int, keep_key: str | None = None) -> int:
    """Delete every session of the user but the one with `keep_key`; returns how many. The caller commits."""
    statement = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_key:
        statement = statement.where(UserSession.key_hash != _hash(keep_key))
    return db.session.execute(statement).rowcount


def list_sessions(user_id: int) -> list[UserSession]:
    """The user's sessions that have not expired, newest first."""
    return list(db.session.scalars(select(UserSession).where(
        UserSession.user_id == user_id, UserSession.expires_at > _now()).order_by(
        UserSession.created_at.desc(), UserSession.id.desc())))


def current_key() -> str | None:
    return session.get(SESSION_KEY)


def is_current(user_session: UserSession) -> bool:
    key = current_key()
    return bool(key) and hmac.compare_digest(user_session.key_hash, _hash(key))


def sign_in_browser(key: str, remember_value: str | None) -> None:
    """Put the session's key in this browser's session cookie and, if any, set the remember cookie.

    Call after Flask-Login's `login_user(user, remember=False)`.
    """
    session[SESSION_KEY] = key
    g.remember_cookie = remember_value


def sign_out_browser() -> None:
    """Forget the session's key in this browser and delete its remember cookie (after `logout_user()`)."""
    session.pop(SESSION_KEY, None)
    g.remember_cookie = ""


def _load_user(user_id: str) -> User | None:
    key = session.get(SESSION_KEY)
    if not key or not user_id.isdigit():
        return None
    return db.session.scalar(select(User).join(UserSession, UserSession.user_id == User.id).where(
        UserSession.key_hash == _hash(key), User.id == int(user_id), User.active.is_(True),
        UserSession.expires_at > _now()))


def _load_user_from_remember_cookie(req) -> User | None:
    """Sign the browser in again from its remember cookie, rotating the secret (see the module)."""
    value = req.cookies.get(REMEMBER_COOKIE)
    if not value:
        return None
    key, _, secret = value.partition(".")
    row = db.session.scalar(select(UserSession).where(UserSession.key_hash == _hash(key or "-")))
    now = _now()
    if row is None or not secret or row.expires_at <= now or row.remember_hash is None:
        g.remember_cookie = ""
        return None
    user = db.session.get(User, row.user_id)
    if hmac.compare_digest(row.remember_hash, _hash(secret)):
        fresh = secrets.token_urlsafe(32)
        row.previous_remember_hash, row.remember_hash, row.rotated_at = row.remember_hash, _hash(fresh), now
        row.expires_at = now + timedelta(days=current_app.config["REMEMBER_DAYS"])
        g.remember_cookie = f"{key}.{fresh}"
    elif (row.previous_remember_hash and hmac.compare_digest(row.previous_remember_hash, _hash(secret))
          and row.rotated_at and now - row.rotated_at <= timedelta(seconds=ROTATION_GRACE)):
        pass  # the same browser's requests that left with the old secret: the new one is on its way
    else:
        current_app.logger.warning("a remember cookie with an outdated secret was used for user %s; "
                                   "that sign-in is ended", row.user_id)
        db.session.delete(row)
        db.session.commit()
        g.remember_cookie = ""
        return None
    db.session.commit()
    if user is None or not user.is_active:
        return None
    session["_user_id"] = str(user.id)
    session["_fresh"] = False
    session["_id"] = login._session_identifier_generator()
    session[SESSION_KEY] = key
    return user


def _set_remember_cookie(response):
    value = g.pop("remember_cookie", None)
    if value is None:
        return response
    cfg = current_app.config
    secure = bool(cfg["REMEMBER_COOKIE_SECURE"] or request.is_secure)
    if value:
        response.set_cookie(REMEMBER_COOKIE, value, max_age=int(timedelta(days=cfg["REMEMBER_DAYS"]).total_seconds()),
                            secure=secure, httponly=True, samesite="Lax", path="/")
    elif REMEMBER_COOKIE in request.cookies:
        response.delete_cookie(REMEMBER_COOKIE, secure=secure, httponly=True, samesite="Lax", path="/")
    return response


def init_app(app: Flask) -> None:
    login.user_loader(_load_user)
    login.request_loader(_load_user_from_remember_cookie)
    app.after_request(_set_remember_cookie)

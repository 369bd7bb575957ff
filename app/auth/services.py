"""User accounts and authentication, with throttling of failed logins.

Failed logins are counted per account and per client address in a sliding
window (`LOGIN_THROTTLE_SECONDS`). Past the limit, further attempts are refused
with `LoginThrottled` until the window ends, so a guesser is slowed down but the
real user is never locked out for longer than one window. A successful login
clears the account's counter.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models.auth import LoginThrottle, Queue, Role, User


class AuthError(Exception):
    """Wrong email or password (deliberately not saying which)."""


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


class UserExists(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(email: str, password: str, role: Role | str = Role.AGENT, name: str = "") -> User:
    """Create a user. Raises `UserExists` or `ValueError` (bad role, empty password)."""
    email = normalise_email(email)
    role = Role(role)
    if not email or "@" not in email:
        raise ValueError("an email address is required")
    if not password:
        raise ValueError("a password is required")
    if db.session.scalar(select(User).where(User.email == email)):
        raise UserExists(email)
    user = User(email=email, name=name or email.split("@")[0].title(), role=role.value)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def ensure_queue(name: str, members: list[User] = ()) -> Queue:
    queue = db.session.scalar(select(Queue).where(Queue.name == name))
    if queue is None:
        queue = Queue(name=name)
        db.session.add(queue)
    for user in members:
        if user not in queue.members:
            queue.members.append(user)
    db.session.flush()
    return queue


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _keys(email: str, remote_addr: str | None) -> list[tuple[str, int]]:
    cfg = current_app.config
    keys = [(f"account:{normalise_email(email)}", cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"])]
    if remote_addr:
        keys.append((f"address:{remote_addr}", cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]))
    return keys


def _check_throttle(keys: list[tuple[str, int]]) -> None:
    window = current_app.config["LOGIN_THROTTLE_SECONDS"]
    now = _now()
    for key, limit in keys:
        row = db.session.get(LoginThrottle, key)
        if row and row.failures >= limit:
            ends = row.window_start + timedelta(seconds=window)
            if ends > now:
                raise LoginThrottled(int((ends - now).total_seconds()) + 1)


def _record_failure(keys: list[tuple[str, int]]) -> None:
    window = timedelta(seconds=current_app.config["LOGIN_THROTTLE_SECONDS"])
    now = _now()
    for key, _limit in keys:
        row = db.session.get(LoginThrottle, key)
        if row is None:
            db.session.add(LoginThrottle(key=key, failures=1, window_start=now))
        elif row.window_start + window <= now:
            row.failures, row.window_start = 1, now
        else:
            row.failures += 1


def authenticate(email: str, password: str, remote_addr: str | None) -> User:
    """Return the user for these credentials.

    Raises `LoginThrottled` when the account or the address has failed too often
    recently, `AuthError` for a wrong email or password or an inactive account.
    The caller commits (failures are recorded in the session).
    """
    keys = _keys(email, remote_addr)
    _check_throttle(keys)
    user = db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))
    if user is None or not user.check_password(password) or not user.active:
        _record_failure(keys)
        raise AuthError("wrong email or password")
    row = db.session.get(LoginThrottle, keys[0][0])
    if row is not None:
        db.session.delete(row)
    user.last_login_at = _now()
    return user

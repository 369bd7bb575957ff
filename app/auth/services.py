"""User accounts and signing in: creating users, checking credentials, changing passwords.

`authenticate` counts the attempt before it checks anything (`app.auth.throttle`), checks the
password inside a hashing slot (`app.auth.passwords`), and takes as long for an address
without an account as for a wrong password. Attempts refused or wrong on an existing account
are counted on the account (`User.failed_signins`), and the next sign-in tells its owner
(`SignIn.failed_attempts`): a notice on the page, not a mail.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select, update

from app.auth import audit, passwords, sessions, throttle
from app.auth.password_rules import WeakPassword, check_new_password
from app.auth.passwords import HashingBusy
from app.auth.throttle import LoginThrottled
from app.extensions import db
from app.models.auth import Queue, Role, User

__all__ = ["AuthError", "HashingBusy", "LoginThrottled", "SignIn", "UserExists", "WeakPassword", "authenticate",
           "change_password", "create_user", "ensure_queue", "normalise_email", "sign_out_everywhere"]


class AuthError(Exception):
    """Wrong email or password (deliberately not saying which)."""


class UserExists(ValueError):
    pass


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in: the user, and what was tried on the account since the last one."""

    user: User
    failed_attempts: int = 0
    last_failed_at: datetime | None = None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(email: str, password: str, role: Role | str = Role.AGENT, name: str = "") -> User:
    """Create a user. Raises `UserExists` or `ValueError` (bad role, empty password).

    It does not apply the password rules (demo data and tests use short passwords): the paths
    where a person chooses a password do (`flask users create` asks `check_new_password` first).
    """
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


def _count_failure(user_id: int | None) -> None:
    if user_id is not None:  # one statement: concurrent failures all count
        db.session.execute(update(User).where(User.id == user_id).values(
            failed_signins=User.failed_signins + 1, last_failed_signin_at=_now()))


def authenticate(email: str, password: str, remote_addr: str | None) -> SignIn:
    """Check a sign-in attempt and return the `SignIn`.

    Raises `LoginThrottled` when the attempt is over a limit, `HashingBusy` when this process
    hashes as many passwords as it may (the attempt is not counted), `AuthError` for a wrong
    email or password or an inactive account. The attempt's count is committed before the
    password is checked (`throttle.count_attempt`); the caller commits the rest (the account's
    failure count, its last sign-in, what a success gives back to the throttle).
    """
    email = normalise_email(email)
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    user_id = user.id if user is not None else None
    try:
        keys = throttle.count_attempt(email, remote_addr)
    except LoginThrottled:
        _count_failure(user_id)
        raise
    try:
        with passwords.hashing_slot():
            right = passwords.check_password(user.password_hash if user is not None else None, password)
    except HashingBusy:
        throttle.give_back(keys, email, remote_addr, signed_in=False)
        raise
    if not right or not user.active:
        _count_failure(user_id)
        raise AuthError("wrong email or password")
    throttle.give_back(keys, email, remote_addr, signed_in=True)
    db.session.refresh(user)  # the failure count as committed by concurrent attempts
    done = SignIn(user, user.failed_signins, user.last_failed_signin_at)
    user.failed_signins, user.last_failed_signin_at = 0, None
    user.last_login_at = _now()
    return done


def change_password(user: User, current: str | None, new: str, keep_session: str | None = None,
                    actor: User | None = None) -> int:
    """Give `user` the password `new` and end their sessions but `keep_session` (a session key).

    `current` must be the present password (None: not asked, as `flask users set-password`
    does not). `actor`: who made the change, for the audit log (None: the command line).
    Returns how many sessions ended. Raises `AuthError` for a wrong current password,
    `WeakPassword` (saying why) for a new password that is refused, `HashingBusy`. The caller commits.
    """
    check_new_password(new, user.email)
    with passwords.hashing_slot():
        if current is not None and not passwords.check_password(user.password_hash, current):
            raise AuthError("wrong current password")
        user.password_hash = passwords.hash_password(new)
    ended = sessions.end_sessions(user.id, keep_key=keep_session)
    audit.record("password_change", user, actor, sessions_ended=ended,
                 via="profile" if current is not None else "command line")
    return ended


def sign_out_everywhere(user: User, actor: User | None = None) -> int:
    """End every session and "Keep me signed in" of `user`; returns how many. The caller commits."""
    ended = sessions.end_sessions(user.id)
    audit.record("sign_out_everywhere", user, actor, sessions_ended=ended)
    return ended

"""Sign-in throttling, counted atomically before any password is checked.

Every attempt first adds one to its counters in one committed transaction (an upsert that
returns the new count), and only an attempt within every limit has its password checked. So
however many attempts arrive at once, from however many web processes, no more than the limit
are ever evaluated. The counters (rows of `login_throttle`), each in a window of
`LOGIN_THROTTLE_SECONDS` from its first attempt:

* `pair:<email>|<address>`, the account from one client address: at most
  `LOGIN_MAX_FAILURES_PER_ACCOUNT`. A guesser elsewhere cannot lock the owner out.
* `address:<address>`, every account from one client address: at most `LOGIN_MAX_FAILURES_PER_ADDRESS`.
* `account:<email>`, the account from anywhere: past `LOGIN_SLOW_DOWN_AFTER` attempts, the
  account takes one attempt per `LOGIN_SLOW_DOWN_SECONDS` (counted by `pace:<email>`, whose
  window is that long): a guesser with many addresses is slowed down, the owner waits seconds.

A successful sign-in removes its pair counter and gives back the one attempt it took from
the others; a wrong password keeps its count until the window ends.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import case, delete, literal, update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models.auth import LoginThrottle


class LoginThrottled(Exception):
    """Too many attempts: the next one is allowed in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _pair(email: str, address: str) -> str:
    return f"pair:{email}|{address}"


def count_attempt(email: str, address: str | None) -> list[str]:
    """Count one sign-in attempt for `email` (normalised) from client `address`, and commit.

    It commits the request's session: the count must be visible to every other attempt before
    this one's password is checked (and the session holds nothing else at sign-in). Using the
    session's own connection, a request never holds two. Returns the keys it counted (for
    `give_back`). Raises `LoginThrottled` when the attempt is over a limit; it stays counted.
    """
    cfg = current_app.config
    address = address or "unknown"
    window = cfg["LOGIN_THROTTLE_SECONDS"]
    limits = {_pair(email, address): (cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"], window),
              f"address:{address}": (cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"], window),
              f"account:{email}": (None, window)}
    now = _now()
    counts = {}
    for key, (_limit, seconds) in limits.items():
        counts[key] = _add_one(key, now, seconds)
    if counts[f"account:{email}"][0] > cfg["LOGIN_SLOW_DOWN_AFTER"]:
        pace = f"pace:{email}"
        limits[pace] = (1, cfg["LOGIN_SLOW_DOWN_SECONDS"])
        counts[pace] = _add_one(pace, now, cfg["LOGIN_SLOW_DOWN_SECONDS"])
    db.session.commit()
    waits = [(start + timedelta(seconds=seconds) - now).total_seconds()
             for key, (limit, seconds) in limits.items()
             for count, start in [counts[key]] if limit is not None and count > limit]
    if waits:
        raise LoginThrottled(max(1, math.ceil(max(waits))))
    return list(limits)


def give_back(keys: list[str], email: str, address: str | None, *, signed_in: bool) -> None:
    """Undo the count of an attempt that was not a wrong password.

    `signed_in`: it succeeded, so its pair counter goes as well. Otherwise it was never
    evaluated (no hashing slot free), and only its own count is taken back. The caller commits.
    """
    pair = _pair(email, address or "unknown")
    table = LoginThrottle.__table__
    if signed_in:
        db.session.execute(delete(table).where(table.c.key == pair))
    back = [k for k in keys if not (signed_in and k == pair)]
    db.session.execute(update(table).where(table.c.key.in_(back), table.c.failures > 0)
                       .values(failures=table.c.failures - 1))


def _add_one(key: str, now: datetime, seconds: int) -> tuple[int, datetime]:
    """One more attempt on `key`, in a window of `seconds` (a new one if the last has ended): (count, start)."""
    table = LoginThrottle.__table__
    dialect = {"postgresql": postgresql, "sqlite": sqlite}[db.session.get_bind().dialect.name]
    ended = table.c.window_start <= now - timedelta(seconds=seconds)
    now = literal(now, table.c.window_start.type)
    statement = dialect.insert(table).values(key=key, failures=1, window_start=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"failures": case((ended, 1), else_=table.c.failures + 1),
              "window_start": case((ended, now), else_=table.c.window_start)},
    ).returning(table.c.failures, table.c.window_start)
    count, start = db.session.execute(statement).one()
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return count, start

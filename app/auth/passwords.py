"""Password hashing, bounded per process, and the same work for an address nobody has.

Hashing a password (scrypt) takes a core for about a tenth of a second. A storm of sign-ins
would take every thread of a web process and leave nothing for the rest of the app (`/healthz`,
the inbox): at most `PASSWORD_HASH_CONCURRENCY` hashes run at once in a process, and a sign-in
that finds no slot within `PASSWORD_HASH_WAIT_SECONDS` gets `HashingBusy` (the page answers 429
with Retry-After).

A sign-in for an address that has no account checks the password against a hash of a random
password made the same way, so it takes as long as a wrong password for a real account: the
time of an answer does not tell which addresses have an account.
"""
from __future__ import annotations

import secrets
import threading
from contextlib import contextmanager

from flask import Flask, current_app
from werkzeug.security import check_password_hash, generate_password_hash

#: Seconds a client is asked to wait when every hashing slot is taken.
RETRY_AFTER_SECONDS = 2
#: The stored hash of an account that has no password yet (made by an admin, waiting for its reset link).
UNUSABLE = "!"


class HashingBusy(Exception):
    """Every password-hashing slot of this process is taken: try again in `retry_after` seconds."""

    retry_after = RETRY_AFTER_SECONDS


def init_app(app: Flask) -> None:
    app.extensions["password_hashing"] = threading.BoundedSemaphore(max(1, app.config["PASSWORD_HASH_CONCURRENCY"]))
    app.extensions["password_dummy_hash"] = None


@contextmanager
def hashing_slot():
    """Hold one of this process's hashing slots. Raises `HashingBusy` when none frees up in time."""
    slots = current_app.extensions["password_hashing"]
    if not slots.acquire(timeout=current_app.config["PASSWORD_HASH_WAIT_SECONDS"]):
        raise HashingBusy()
    try:
        yield
    finally:
        slots.release()


def hash_password(password: str) -> str:
    """The hash to store for `password`, with the configured method. Call it inside `hashing_slot()`."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; without a hash (no such account, or `UNUSABLE`: no
    password yet), the same work, then False.

    Call it inside `hashing_slot()`.
    """
    if password_hash is None or password_hash == UNUSABLE:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(password_hash, password)


def _dummy_hash() -> str:
    extensions = current_app.extensions
    if extensions["password_dummy_hash"] is None:  # made once per process; a race only makes it twice
        extensions["password_dummy_hash"] = hash_password(secrets.token_urlsafe(16))
    return extensions["password_dummy_hash"]

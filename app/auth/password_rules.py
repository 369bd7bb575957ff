"""What a new password must be, after NIST SP 800-63B (section 5.1.1.2, "memorized secrets").

Length over composition: at least `PASSWORD_MIN_LENGTH` characters (12 by default, never fewer
than 8) and at most `MAX_LENGTH` (so a long passphrase always fits), any characters, spaces
included, and no rule about digits, capitals or symbols. A new password is refused when it is a
well-known one (`common_passwords.txt.gz`, 8,000 common passwords of 8 characters or more,
compared in lower case and with spaces removed), one character or a short run repeated
("aaaaaaaaaaaa", "abcabcabcabc"), or contains the name part of the user's email address.
Passwords never expire: nothing asks for a periodic change.

Every path that sets a password asks `check_new_password`: `flask users create` and
`set-password`, the profile's Change Password, and the one-time reset link.
"""
from __future__ import annotations

import functools
import gzip
from pathlib import Path

from flask import current_app

#: The longest password accepted (SP 800-63B asks for at least 64).
MAX_LENGTH = 1024
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt.gz")


class WeakPassword(ValueError):
    """A new password that is refused; the message says why, in the user's words."""


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower case."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def min_length() -> int:
    return current_app.config["PASSWORD_MIN_LENGTH"]


def hint() -> str:
    """What the forms say about new passwords."""
    return (f"At least {min_length()} characters; a phrase of several words is best. "
            "Common passwords and your email name are refused.")


def _repeats_a_short_run(password: str) -> bool:
    return any(len(password) % n == 0 and password == password[:n] * (len(password) // n) for n in (1, 2, 3))


def check_new_password(password: str, email: str | None = None) -> None:
    """Raises `WeakPassword`, saying why, when `password` may not be a new password (of `email`'s account)."""
    shortest = min_length()
    if len(password) < shortest:
        raise WeakPassword(f"Use at least {shortest} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    folded = password.lower()
    common = common_passwords()
    if folded in common or "".join(folded.split()) in common or _repeats_a_short_run(folded):
        raise WeakPassword("This password is too common; choose another, for example a phrase of several words.")
    name = (email or "").partition("@")[0].lower()
    if len(name) >= 3 and name in folded:
        raise WeakPassword("Do not use your email name in your password.")

"""Encryption at rest for mail passwords (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from `MAIL_SECRET_KEY` (a Fernet key, `Fernet.generate_key()`), or is
derived from `SECRET_KEY` when that is not set. Rotating keys: put the new key first
in `MAIL_SECRET_KEY` separated by commas (`new,old`); old tokens still decrypt.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in (current_app.config.get("MAIL_SECRET_KEY") or "").split(",") if k.strip()]
    if not keys:
        digest = hashlib.sha256(b"pigeonhole-mail-secret:" + current_app.config["SECRET_KEY"].encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt_secret(plaintext: str) -> bytes:
    return _fernet().encrypt(plaintext.encode("utf-8"))


def decrypt_secret(token: bytes | None) -> str | None:
    """The plaintext, or None when nothing is stored. Raises `SecretUnreadable` for a bad token."""
    if not token:
        return None
    try:
        return _fernet().decrypt(bytes(token)).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable("the stored password cannot be decrypted with the configured MAIL_SECRET_KEY") from None

"""Signing in to IMAP, POP3 and SMTP with an OAuth 2.0 access token: SASL XOAUTH2 and OAUTHBEARER.

XOAUTH2 (Google's and Microsoft's mechanism) sends `user=U ^A auth=Bearer T ^A ^A`;
OAUTHBEARER (RFC 7628) sends a GS2 header, then `host`, `port` and `auth` key-values.
Both are *initial responses*: the client says everything in its first message.

When a server refuses the token it does not answer NO at once: it sends one more
challenge holding a JSON error (`{"status": "401", "schemes": "Bearer", "scope": "..."}`
for XOAUTH2, RFC 7628 section 3.2.2 for OAUTHBEARER), the client answers with an
empty response (XOAUTH2) or `^A` (OAUTHBEARER), and then the server fails the command.
`SaslExchange` plays the client's side of that dance for imaplib, keeps the server's
JSON, and `refusal()` turns it into words for the admin ("the server wants the
scope ..."). The token itself never appears in an error or a log line.

`pop3_token_login()` and `smtp_token_login()` do the same over POP3 (RFC 5034 AUTH
with an initial response) and SMTP (RFC 4954 AUTH) on an already connected client.
"""
from __future__ import annotations

import base64
import binascii
import json
import poplib
import smtplib

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"


class TokenRejected(Exception):
    """The server refused the access token; `str()` says why in words for the admin, without the token."""

    def __init__(self, detail: str, error: dict | None = None) -> None:
        super().__init__(detail)
        self.error = error or {}


def initial_response(mechanism: str, user: str, token: str, host: str | None = None,
                     port: int | None = None) -> bytes:
    """The client's first (and only) SASL message for `mechanism` (XOAUTH2 or OAUTHBEARER)."""
    if mechanism == XOAUTH2:
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    if mechanism == OAUTHBEARER:
        gs2_user = user.replace("=", "=3D").replace(",", "=2C")
        extra = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
        return f"n,a={gs2_user},\x01{extra}auth=Bearer {token}\x01\x01".encode()
    raise ValueError(f"unknown SASL mechanism {mechanism!r}")


def _error_json(challenge: bytes) -> dict:
    try:
        value = json.loads(challenge.decode("utf-8", "replace"))
    except ValueError:
        return {"message": challenge.decode("utf-8", "replace")[:200]}
    return value if isinstance(value, dict) else {}


def refusal(error: dict | None, server_words: str = "") -> str:
    """Words for an admin from a server's SASL error JSON (and its final reply)."""
    error = error or {}
    status = str(error.get("status") or "").strip()
    parts = ["The mail server refused the sign-in token"]
    if status in ("invalid_token", "401"):
        parts.append("(it is expired, revoked or not valid for this mailbox)")
    elif status in ("insufficient_scope", "403"):
        parts.append("(it lacks a permission the server needs)")
    scope = str(error.get("scope") or "").strip()
    text = " ".join(parts) + "."
    if scope:
        text += f" The server asks for the scope \"{scope}\": check the provider's scope setting and sign in again."
    if server_words:
        text += f" Server: {server_words[:200]}"
    return text


class SaslExchange:
    """The client side of one token sign-in, as a callable for imaplib's `authenticate()`.

    The first call answers with the initial response; a later call carries the server's
    error JSON, which is kept in `error` and answered with the empty response.
    """

    def __init__(self, mechanism: str, user: str, token: str, host: str | None = None,
                 port: int | None = None) -> None:
        self.mechanism = mechanism
        self._first = initial_response(mechanism, user, token, host, port)
        self.calls = 0
        self.error: dict | None = None

    def __call__(self, challenge: bytes) -> bytes:
        self.calls += 1
        if self.calls == 1:  # the server's empty "+" asks for the initial response
            return self._first
        self.error = _error_json(challenge or b"")
        return b"\x01" if self.mechanism == OAUTHBEARER else b""


def imap_token_login(client, user: str, token: str, mechanism: str = XOAUTH2) -> None:
    """AUTHENTICATE with a token on an `imapclient.IMAPClient`. Raises `TokenRejected` with the server's reason."""
    from imapclient.exceptions import LoginError

    exchange = SaslExchange(mechanism, user, token)
    try:
        client.sasl_login(mechanism, exchange)
    except LoginError as exc:
        words = str(exc).strip()
        raise TokenRejected(refusal(exchange.error, words), exchange.error) from None


def pop3_token_login(conn: poplib.POP3, user: str, token: str, mechanism: str = XOAUTH2) -> None:
    """AUTH with a token (RFC 5034, initial response) on a connected POP3 client. Raises `TokenRejected`."""
    payload = base64.b64encode(initial_response(mechanism, user, token)).decode("ascii")
    conn._putcmd(f"AUTH {mechanism} {payload}")  # poplib has no SASL: the raw command, as RFC 5034 writes it
    try:
        reply = conn._getresp()
    except poplib.error_proto as exc:
        raise TokenRejected(refusal(None, _text(exc))) from None
    if reply.startswith(b"+OK"):
        return
    error = _decode_challenge(reply[1:].strip())  # "+ base64(error JSON)": answer it, then the server fails
    conn._putcmd("\x01" if mechanism == OAUTHBEARER else "")
    try:
        conn._getresp()
    except poplib.error_proto as exc:
        raise TokenRejected(refusal(error, _text(exc)), error) from None
    raise TokenRejected(refusal(error), error)


def smtp_token_login(smtp: smtplib.SMTP, user: str, token: str, mechanism: str = XOAUTH2) -> tuple[int, bytes]:
    """AUTH with a token on a connected SMTP client (after EHLO). Returns the final (code, reply).

    Raises `TokenRejected` when the server sent an error challenge; a plain 5xx/4xx is
    returned for the caller to classify (temporary or not).
    """
    payload = base64.b64encode(initial_response(mechanism, user, token)).decode("ascii")
    code, reply = smtp.docmd("AUTH", f"{mechanism} {payload}")
    if code == 334:
        error = _decode_challenge(reply.strip())
        code, reply = smtp.docmd("AQ==" if mechanism == OAUTHBEARER else "")
        raise TokenRejected(refusal(error, f"{code} {reply.decode('utf-8', 'replace')}"), error)
    return code, reply


def _decode_challenge(data: bytes) -> dict:
    try:
        return _error_json(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return {}


def _text(exc: BaseException) -> str:
    value = exc.args[0] if exc.args else exc
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

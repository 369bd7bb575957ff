"""Errors of mail servers and connections in plain sentences, for Test Connection and for polling.

`classify(exc)` turns whatever a client library raised (socket, TLS, imaplib/imapclient,
poplib, smtplib) into one of a small set of reasons an admin can act on (`REASONS`)
and the server's own words (`detail`). `explain(exc, where)` makes that one sentence,
like "IMAP at imap.acme.com:993 (SSL): The server refused the user name or password.
([AUTHENTICATIONFAILED] Authentication failed.)". Test Connection (`app.mail.probe`)
and the mailbox poller (`app.runtime.poll`) both use it, so an admin reads the same
words for the same problem wherever it shows. Passwords never reach these texts:
client libraries do not put them in their exceptions, and nothing here adds them.
"""
from __future__ import annotations

import imaplib
import poplib
import re
import smtplib
import socket
import ssl

from imapclient.exceptions import LoginError

from app.mail.netguard import HostRefused, PlaintextRefused
from app.mail.sasl import TokenRejected

#: How much of a server's answer an error shows: its first line, cut to this many characters. A
#: multi-line banner of whatever listens on a port (an internal daemon's secrets) is never repeated.
MAX_WORDS = 200

#: Why a connection failed, in words an admin can act on.
REASONS = {
    "name_not_found": "The server name was not found. Check the spelling of the server.",
    "connection_refused": "The server refused the connection. Check the port and the security setting.",
    "timed_out": "The server did not answer in time. Check the server, the port and any firewall.",
    "connection_closed": "The server closed the connection without an answer. Check the port and the security "
                         "setting.",
    "network_error": "The server could not be reached.",
    "tls_failure": "The secure (TLS) connection failed.",
    "wrong_credentials": "The server refused the user name or password.",
    "token_refused": "The server refused the sign-in token.",
    "mailbox_missing": "Signed in, but the mailbox could not be opened.",
    "auth_unavailable": "The server does not offer sign-in (AUTH) on this connection.",
    "protocol_error": "The server answered in a way we did not expect. Check the protocol and the port.",
    "private_host": "The server is at an address Pigeonhole does not connect to (loopback, link-local or "
                    "private network). Use the server's public name.",
    "unencrypted_sign_in": "Signing in without encryption was refused; nothing was sent.",
    "internal_error": "Pigeonhole stopped on an error of its own; it was logged and the next attempt tries again.",
}


class Failure(Exception):
    """A failure already classified by the step that saw it (`reason` is a key of `REASONS`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def words(value) -> str:
    """Readable, short server words from bytes, lists or exceptions: the first line only, at most
    `MAX_WORDS` characters."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    text = re.sub(r"""^b(['"])(.*)\1$""", r"\2", text, flags=re.DOTALL)  # imaplib's repr of bytes
    text = re.split(r"\r\n|\r|\n|\\r\\n|\\n", text.strip(), maxsplit=1)[0]  # real or repr'd line breaks
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_WORDS else text[:MAX_WORDS - 1] + "\u2026"


_POP3_CODE = re.compile(r"^-ERR\s+\[([A-Z/-]+)\]")


def pop3_sign_in_reason(text: str) -> str:
    """The reason of a POP3 USER/PASS refusal: RFC 3206 [SYS/...] and [IN-USE] are the mailbox's, else credentials."""
    code = _POP3_CODE.match(text)
    if code and (code.group(1).startswith("SYS") or code.group(1) == "IN-USE"):
        return "mailbox_missing"
    return "wrong_credentials"


def imap_login_reason(text: str) -> str:
    """The reason of an IMAP LOGIN refusal: encryption required first, or the credentials."""
    upper = text.upper()
    return "tls_failure" if "PRIVACYREQUIRED" in upper or "LOGINDISABLED" in upper else "wrong_credentials"


def classify(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for an exception raised while talking to a mail server."""
    if isinstance(exc, Failure):
        return exc.reason, exc.detail
    if isinstance(exc, TokenRejected):
        return "token_refused", str(exc)
    if isinstance(exc, HostRefused):
        return "private_host", str(exc)
    if isinstance(exc, PlaintextRefused):
        return "unencrypted_sign_in", str(exc)
    if isinstance(exc.__context__, (TimeoutError, socket.timeout)) and not isinstance(exc, ssl.SSLError):
        exc = exc.__context__  # smtplib and imaplib wrap a read timeout in their own errors
    if isinstance(exc, socket.gaierror):
        return "name_not_found", words(exc.strerror or exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused", "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed_out", "no answer before the timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_failure", f"the server's certificate could not be verified: {words(exc.verify_message or exc)}"
    if isinstance(exc, ssl.SSLError):
        return "tls_failure", words(exc.reason or exc)
    if isinstance(exc, LoginError):
        text = words(exc)
        reason = imap_login_reason(text)
        return reason, (f"the server requires encryption before sign-in: {text}" if reason == "tls_failure" else text)
    if isinstance(exc, poplib.error_proto):
        text = words(exc.args[0] if exc.args else exc)
        if text == "-ERR EOF":  # poplib's words for a connection closed before the answer
            return "connection_closed", ""
        if _POP3_CODE.match(text):  # a coded refusal (RFC 3206) comes from USER/PASS
            return pop3_sign_in_reason(text), text
        return "protocol_error", text
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "wrong_credentials", words(exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "connection_closed", ""
    if isinstance(exc, smtplib.SMTPResponseException):
        return "protocol_error", f"{exc.smtp_code} {words(exc.smtp_error)}"
    if isinstance(exc, (imaplib.IMAP4.error, smtplib.SMTPException)):
        text = words(exc)
        if isinstance(exc, imaplib.IMAP4.abort) and text.endswith("socket error: EOF"):  # imaplib's closed connection
            return "connection_closed", ""
        if re.match(r"(select|examine) failed", text, re.IGNORECASE):
            return "mailbox_missing", text
        return "protocol_error", text
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError, ConnectionAbortedError)):
        return "connection_closed", ""
    if isinstance(exc, OSError):
        return "network_error", words(exc.strerror or exc)
    return "internal_error", words(f"{exc.__class__.__name__}: {exc}")


def sentence(reason: str, detail: str = "", where: str | None = None, seconds: float | None = None) -> str:
    """"<where>: <reason in words> (<detail>)": what admins read for a failure.

    A timeout says how long we waited when `seconds` is given ("did not answer in time (10 s)"), so a
    silent server never reads like a dropped connection.
    """
    text = REASONS[reason]
    if reason == "timed_out" and seconds:
        text = text.replace("in time.", f"in time ({seconds:g} s).")
        detail = ""  # "no answer before the timeout" says nothing the sentence does not
    if where:
        text = f"{where}: {text}"
    return f"{text} ({detail})" if detail else text


def explain(exc: BaseException, where: str | None = None, seconds: float | None = None) -> str:
    """One plain sentence for an exception, with the server's words; `where` names the server, `seconds`
    the timeout that was used."""
    return sentence(*classify(exc), where=where, seconds=seconds)

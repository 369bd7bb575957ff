"""Test Connection: prove mailbox settings work without changing anything.

`probe_incoming()` signs in to the incoming server and opens the mailbox the way
polling will, read-only:

* IMAP: connect (implicit TLS or STARTTLS as configured), LOGIN, SELECT INBOX
  with `readonly=True` (EXAMINE), LOGOUT. No flag, no message and no folder changes.
* POP3: connect, USER/PASS, STAT, QUIT. QUIT after STAT deletes nothing because
  nothing was marked for deletion.

`probe_outgoing()` does what sending will do up to the point of sending: EHLO,
STARTTLS (or implicit TLS), EHLO again, AUTH; then QUIT. No MAIL FROM, so nothing
is ever sent.

Before connecting, the server name is resolved once and checked against a `NetPolicy`
(`app.mail.netguard`): an address that is not public is refused without connecting
(unless the policy allows private hosts), and so is a sign-in on a connection without
encryption (unless the address allows it, or the server is on loopback); the
connection then goes to the checked address. The server's words in a result are
only the first line of its answer, trimmed (`app.mail.failures.words`).

Every step runs under a short socket timeout, certificates are always verified
(`app.mail.tls`), and failures become a `ProbeResult` with one of a small set of
reasons (`REASONS`) the admin can act on: the name was not found, the connection
was refused, the server did not answer in time (with the timeout in seconds, never
confused with a connection the server closed), TLS failed (including a
certificate that does not verify, or STARTTLS not offered), the credentials were
refused, or the mailbox could not be opened. The server's own words go into
`detail`. Passwords never appear in results or logs. The words come from
`app.mail.failures`, which the mailbox poller uses too.

OAuth 2.0 mailboxes pass a `Token` instead of the password: IMAP and POP3 sign in
with SASL XOAUTH2/OAUTHBEARER, SMTP with AUTH XOAUTH2; a refused token is the
reason `token_refused`, with the server's explanation (the scope it wants) as detail.

`probe()` runs both sides in parallel, so the admin waits at most about one
timeout. Nothing here touches Flask or the database: the caller passes plain
settings and a TLS context.
"""
from __future__ import annotations

import imaplib
import poplib
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from imapclient.exceptions import CapabilityError, LoginError

from app.mail.failures import REASONS, Failure, classify, pop3_sign_in_reason, sentence, words
from app.mail.netguard import NetPolicy
from app.mail.pinned import PinnedIMAPClient, PinnedPOP3, PinnedPOP3_SSL, PinnedSMTP, PinnedSMTP_SSL
from app.mail.sasl import XOAUTH2, imap_token_login, pop3_token_login, smtp_token_login

__all__ = ["REASONS", "DEFAULT_PORTS", "NetPolicy", "ServerSettings", "ProbeResult", "default_port", "probe", "probe_incoming",
           "probe_outgoing"]

#: Default ports per (protocol, security).
DEFAULT_PORTS = {
    ("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
    ("pop3", "ssl"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110,
    ("smtp", "ssl"): 465, ("smtp", "starttls"): 587, ("smtp", "none"): 25,
}


def default_port(protocol: str, security: str) -> int:
    return DEFAULT_PORTS[(protocol, security)]


@dataclass(frozen=True)
class ServerSettings:
    """Where and how to connect: protocol (imap, pop3, smtp), host, port, security (ssl, starttls, none)."""

    protocol: str
    host: str
    port: int
    security: str

    def describe(self) -> str:
        how = {"ssl": "SSL", "starttls": "STARTTLS", "none": "no encryption"}[self.security]
        return f"{self.protocol.upper()} at {self.host}:{self.port} ({how})"


@dataclass(frozen=True)
class ProbeResult:
    side: str  # "incoming" or "outgoing"
    ok: bool
    message: str
    reason: str | None = None  # a key of REASONS when not ok
    detail: str = ""           # the server's or the library's own words

    def to_dict(self) -> dict:
        return {"side": self.side, "ok": self.ok, "message": self.message, "reason": self.reason,
                "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict) -> "ProbeResult":
        return cls(side=data["side"], ok=data["ok"], message=data["message"], reason=data.get("reason"),
                   detail=data.get("detail") or "")


def _failed(side: str, settings: ServerSettings, exc: BaseException, timeout: float) -> ProbeResult:
    reason, detail = classify(exc)
    if reason == "timed_out":  # the sentence says how long we waited; there are no server words
        detail = ""
    return ProbeResult(side=side, ok=False, reason=reason, detail=detail,
                       message=sentence(reason, where=settings.describe(), seconds=timeout))


# --- incoming ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    """An OAuth 2.0 access token to sign in with instead of a password (SASL `mechanism`)."""

    access_token: str = field(repr=False)
    mechanism: str = XOAUTH2


def _probe_imap(settings: ServerSettings, login: str, password: str | Token, timeout: float,
                context: ssl.SSLContext, policy: NetPolicy) -> str:
    target = policy.target(settings.host, settings.port, settings.security)
    client = PinnedIMAPClient(target, ssl=settings.security == "ssl", ssl_context=context, timeout=timeout)
    try:
        if settings.security == "starttls":
            try:
                client.starttls(context)
            except CapabilityError:
                raise Failure("tls_failure", "the server does not offer STARTTLS") from None
        try:
            if isinstance(password, Token):
                imap_token_login(client, login, password.access_token, password.mechanism)
            else:
                client.login(login, password)
        except LoginError as exc:
            raise Failure(*classify(exc)) from None
        try:
            info = client.select_folder("INBOX", readonly=True)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise Failure("mailbox_missing", f"INBOX: {words(exc)}") from None
        count = info.get(b"EXISTS", 0)
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
        return f"Signed in to {settings.describe()} and opened INBOX read-only ({count} message{'s' if count != 1 else ''})."
    finally:
        try:
            client.shutdown()
        except (OSError, imaplib.IMAP4.error):
            pass


class _ClosingPOP3Mixin:
    """poplib leaves its socket open when the greeting never comes; close it."""

    def __init__(self, *args, **kwargs) -> None:
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            for name in ("file", "sock"):
                thing = getattr(self, name, None)
                if thing is not None:
                    thing.close()
            raise


class _POP3(_ClosingPOP3Mixin, PinnedPOP3):
    pass


class _POP3_SSL(_ClosingPOP3Mixin, PinnedPOP3_SSL):
    pass


def _probe_pop3(settings: ServerSettings, login: str, password: str | Token, timeout: float,
                context: ssl.SSLContext, policy: NetPolicy) -> str:
    target = policy.target(settings.host, settings.port, settings.security)
    if settings.security == "ssl":
        client = _POP3_SSL(target, timeout=timeout, context=context)
    else:
        client = _POP3(target, timeout=timeout)
    try:
        if settings.security == "starttls":
            try:
                client.stls(context)
            except poplib.error_proto as exc:
                raise Failure("tls_failure", f"the server does not offer STARTTLS: {words(exc)}") from None
        try:
            if isinstance(password, Token):
                pop3_token_login(client, login, password.access_token, password.mechanism)
            else:
                client.user(login)
                client.pass_(password)
        except poplib.error_proto as exc:
            text = words(exc.args[0] if exc.args else exc)
            raise Failure(pop3_sign_in_reason(text), text) from None
        try:
            count, _size = client.stat()
        except poplib.error_proto as exc:
            # Dovecot, for one, opens the mailbox lazily and fails here rather than at PASS.
            raise Failure("mailbox_missing", words(exc.args[0] if exc.args else exc)) from None
        try:
            client.quit()
        except (poplib.error_proto, OSError):
            pass
        return f"Signed in to {settings.describe()}: {count} message{'s' if count != 1 else ''} waiting."
    finally:
        try:
            client.close()
        except OSError:
            pass


def probe_incoming(settings: ServerSettings, login: str, password: str | Token, timeout: float,
                   context: ssl.SSLContext, policy: NetPolicy = NetPolicy()) -> ProbeResult:
    """Sign in to the IMAP or POP3 server (a password, or a `Token`) and open INBOX read-only.

    Every connection failure, and a server the `policy` refuses, becomes a result; only an
    unknown protocol raises `ValueError`.
    """
    probes = {"imap": _probe_imap, "pop3": _probe_pop3}
    if settings.protocol not in probes:
        raise ValueError(f"unknown incoming protocol {settings.protocol!r}")
    try:
        message = probes[settings.protocol](settings, login, password, timeout, context, policy)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result the admin can read
        return _failed("incoming", settings, exc, timeout)
    return ProbeResult(side="incoming", ok=True, message=message)


# --- outgoing ----------------------------------------------------------------------------------

def probe_outgoing(settings: ServerSettings, login: str, password: str | Token, timeout: float,
                   context: ssl.SSLContext, local_hostname: str = "localhost",
                   policy: NetPolicy = NetPolicy()) -> ProbeResult:
    """EHLO, TLS and AUTH on the SMTP server, then QUIT: nothing is sent. Never raises."""
    try:
        target = policy.target(settings.host, settings.port, settings.security, signs_in=bool(password))
        if settings.security == "ssl":
            client = PinnedSMTP_SSL(target, local_hostname=local_hostname, timeout=timeout, context=context)
        else:
            client = PinnedSMTP(target, local_hostname=local_hostname, timeout=timeout)
        try:
            client.ehlo()
            if settings.security == "starttls":
                if not client.has_extn("starttls"):
                    raise Failure("tls_failure", "the server does not offer STARTTLS")
                client.starttls(context=context)
                client.ehlo()
            if isinstance(password, Token):
                offered = client.esmtp_features.get("auth", "").upper().split()
                if password.mechanism not in offered:
                    raise Failure("auth_unavailable", f"EHLO does not list AUTH {password.mechanism}")
                code, reply = smtp_token_login(client, login, password.access_token, password.mechanism)
                if code != 235:
                    raise smtplib.SMTPAuthenticationError(code, reply)
                how = f"signed in as {login} with a token"
            elif password:
                if not client.has_extn("auth"):
                    raise Failure("auth_unavailable", "EHLO does not list AUTH")
                client.login(login, password)
                how = f"signed in as {login}"
            else:
                how = "no sign-in (the server needs none)"
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result the admin can read
        return _failed("outgoing", settings, exc, timeout)
    return ProbeResult(side="outgoing", ok=True,
                       message=f"Connected to {settings.describe()}, {how}; nothing was sent.")


def probe(incoming: ServerSettings | None, outgoing: ServerSettings | None, login: str, password: str | Token,
          timeout: float, context: ssl.SSLContext, local_hostname: str = "localhost",
          outgoing_login: str | None = None, outgoing_password: str | None = None,
          policy: NetPolicy = NetPolicy(), outgoing_no_auth: bool = False) -> list[ProbeResult]:
    """Probe the incoming and outgoing servers in parallel; results in that order.

    The outgoing server signs in with `outgoing_login`/`outgoing_password` when given, else as the mailbox,
    and not at all with `outgoing_no_auth` (a relay that needs no sign-in: AUTH is neither needed nor tried).
    Both connect only where `policy` allows.
    """
    jobs = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="probe") as pool:
        if incoming is not None:
            jobs.append(pool.submit(probe_incoming, incoming, login, password, timeout, context, policy))
        if outgoing is not None:
            jobs.append(pool.submit(probe_outgoing, outgoing, outgoing_login or login,
                                    "" if outgoing_no_auth else outgoing_password if outgoing_login else password,
                                    timeout, context,
                                    local_hostname, policy))
        return [job.result() for job in jobs]

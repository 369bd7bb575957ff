"""The SMTP client of the send queue: one connection, several messages, classified errors.

`SMTPSession(settings)` opens a connection on first use (implicit TLS, STARTTLS or
plain, always verifying certificates with the context it is given), authenticates
when the settings carry a login, and then sends any number of messages over the
same connection with `send(mail_from, recipients, data)`. A connection the server
closed while idle is reopened once, transparently, before anything of the next
message was transmitted.

Every failure becomes a `DeliveryError` that keeps the server's own words and says
whether it is worth trying again:

* temporary: connection problems (refused, timed out, dropped, TLS handshake),
  and 4xx replies;
* permanent: 5xx replies (a refused recipient, a refused login, a message too
  large), and configuration that cannot work (STARTTLS or AUTH not offered).

`DeliveryError.session` is True when the failure happened before any message
transaction (connecting, TLS, login): it concerns every message waiting for this
server, not just the one at hand.

`parse_relay_url()` reads the platform relay setting (`SMTP_RELAY_URL`):
`smtp://user:pass@host:587` (STARTTLS, the default for `smtp://`),
`smtp://host:25?tls=none` (plain, for a local sink), `smtps://host:465` (implicit TLS).
Passwords never appear in `repr()` or in error texts.

A custom-domain server comes with a `NetPolicy` (`SMTPSettings.policy`): the session
then connects only to the address `app.mail.netguard` checked, and refuses to sign in
without encryption unless the policy allows it, before anything is sent. The platform
relay is ops' own setting and has none.
"""
from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from app.mail.netguard import HostRefused, NetPolicy, PlaintextRefused
from app.mail.oauth import TokenError
from app.mail.pinned import PinnedSMTP, PinnedSMTP_SSL
from app.mail.sasl import XOAUTH2, TokenRejected, smtp_token_login

SECURITY_LABELS = {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": "no encryption"}


@dataclass(frozen=True)
class SMTPSettings:
    """Where and how to send: host, port, security ("ssl", "starttls", "none"), an optional login and private CA.

    The login is a password, or an OAuth 2.0 token: `mechanism` (XOAUTH2 or OAUTHBEARER)
    with `token_source`, called at each connection for a valid access token (so a
    connection opened after a renewal uses the new token); called again with the
    refused token when the server refuses it, for a renewed one. It may raise
    `app.mail.oauth.TokenError`, which becomes a temporary `DeliveryError`.
    """

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    mechanism: str | None = None  # None: password login
    token_source: Callable[[str | None], str] | None = field(default=None, repr=False, compare=False)
    ca_pem: str | None = field(default=None, repr=False)  # a private CA the server is verified against
    policy: NetPolicy | None = None  # where it may connect and sign in (`app.mail.netguard`); None: unchecked

    def __post_init__(self) -> None:
        if self.security not in SECURITY_LABELS:
            raise ValueError(f"unknown SMTP security {self.security!r}; use ssl, starttls or none")

    def describe(self) -> str:
        return f"{self.host}:{self.port} ({SECURITY_LABELS[self.security]})"


def parse_relay_url(url: str) -> SMTPSettings:
    """`smtp[s]://[user[:password]@]host[:port][?tls=starttls|none]` as settings; ValueError when malformed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("SMTP_RELAY_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_RELAY_URL names no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "smtps":
        security = "ssl"
    else:
        security = query.get("tls", "starttls").lower()
        if security not in ("starttls", "none"):
            raise ValueError("SMTP_RELAY_URL: tls= must be starttls or none (use smtps:// for implicit TLS)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_RELAY_URL has an invalid port") from None
    if port is None:
        port = {"ssl": 465, "starttls": 587, "none": 25}[security]
    return SMTPSettings(
        host=parts.hostname, port=port, security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class DeliveryError(Exception):
    """Sending failed. `code` and `text` are the server's reply when there was one."""

    def __init__(self, text: str, code: int | None = None, *, temporary: bool, session: bool = False) -> None:
        self.text = text.strip()
        self.code = code
        self.temporary = temporary
        self.session = session
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code else self.text


@dataclass
class SendResult:
    """The server's reply to the end of DATA, and any recipients it refused while taking the rest."""

    code: int
    text: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


def _words(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(line.strip() for line in reply.splitlines()).strip()


def is_temporary(code: int | None) -> bool:
    """4xx (and replies without a usable code) are worth retrying; 5xx are not."""
    return code is None or not (500 <= code <= 599)


def _from_reply(code: int, reply: bytes | str, *, session: bool = False, what: str = "") -> DeliveryError:
    text = _words(reply) or what
    return DeliveryError(text, code, temporary=is_temporary(code), session=session)


class SMTPSession:
    """One connection to one SMTP server, opened lazily and reused for several messages.

    Use as a context manager (`with SMTPSession(...) as smtp: smtp.send(...)`); the
    connection is closed politely (QUIT) at the end. Not thread-safe.
    """

    def __init__(self, settings: SMTPSettings, *, context: ssl.SSLContext | None = None,
                 helo_name: str | None = None, timeout: float = 60.0) -> None:
        self.settings = settings
        self.context = context  # built on first use when None (loading the CA store is slow)
        self.helo_name = helo_name or "localhost"
        self.timeout = timeout
        self.connections = 0  # how many times we connected (tests and the benchmark read it)
        self._smtp: smtplib.SMTP | None = None
        self._used = False

    def __enter__(self) -> SMTPSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # interrupted (a job timeout, a crash): no polite QUIT to a server that may not answer
            self._abort()

    @property
    def connected(self) -> bool:
        return self._smtp is not None

    # --- connection ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, say EHLO, secure the connection and log in. Raises `DeliveryError(session=True)`."""
        self.close()
        s = self.settings
        where = s.describe()
        if self.context is None and s.security != "none":
            self.context = ssl.create_default_context()
        try:
            target = s.policy.target(s.host, s.port, s.security, signs_in=bool(s.username)) if s.policy else None
        except (HostRefused, PlaintextRefused) as exc:
            raise DeliveryError(f"Not connecting to {where}: {exc}", temporary=False, session=True) from None
        except OSError as exc:  # the name was not found
            raise DeliveryError(f"Cannot connect to {where}: {_describe(exc)}", temporary=True, session=True) from None
        try:
            if s.security == "ssl":
                smtp = PinnedSMTP_SSL(target, local_hostname=self.helo_name, timeout=self.timeout,
                                      context=self.context) if target else \
                    smtplib.SMTP_SSL(s.host, s.port, local_hostname=self.helo_name, timeout=self.timeout,
                                     context=self.context)
            elif target:
                smtp = PinnedSMTP(target, local_hostname=self.helo_name, timeout=self.timeout)
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=self.helo_name, timeout=self.timeout)
        except smtplib.SMTPResponseException as exc:  # a greeting other than 220
            raise _from_reply(exc.smtp_code, exc.smtp_error, session=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"Cannot connect to {where}: {_describe(exc)}", temporary=True, session=True) from None
        self._smtp = smtp
        self.connections += 1
        self._used = False
        try:
            self._ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(f"{where} does not offer STARTTLS; check the server's security setting",
                                        temporary=False, session=True)
                code, reply = smtp.starttls(context=self.context)
                if code != 220:
                    raise _from_reply(code, reply, session=True, what="STARTTLS refused")
                self._ehlo()
            if s.username and s.token_source is not None:
                self._token_login(s.username, s.token_source, s.mechanism or XOAUTH2)
            elif s.username:
                self._login(s.username, s.password or "")
        except DeliveryError:
            self._abort()
            raise
        except smtplib.SMTPResponseException as exc:
            self._abort()
            raise _from_reply(exc.smtp_code, exc.smtp_error, session=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._abort()
            raise DeliveryError(f"Connection to {where} failed: {_describe(exc)}", temporary=True,
                                session=True) from None

    def _ehlo(self) -> None:
        code, reply = self._smtp.ehlo()
        if code != 250:
            code, reply = self._smtp.helo()
            if code != 250:
                raise _from_reply(code, reply, session=True, what="EHLO refused")

    def _login(self, username: str, password: str) -> None:
        """AUTH PLAIN (or LOGIN), UTF-8 throughout (smtplib's own login only takes ASCII passwords)."""
        smtp = self._smtp
        if not smtp.has_extn("auth"):
            raise DeliveryError(f"{self.settings.describe()} does not offer AUTH, but a login is configured",
                                temporary=False, session=True)
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode("ascii")
            code, reply = smtp.docmd("AUTH", "PLAIN " + token)
        elif "LOGIN" in mechanisms:
            code, reply = smtp.docmd("AUTH", "LOGIN " + base64.b64encode(username.encode()).decode("ascii"))
            if code == 334:
                code, reply = smtp.docmd(base64.b64encode(password.encode()).decode("ascii"))
        else:
            raise DeliveryError(f"{self.settings.describe()} offers no AUTH mechanism we support "
                                f"(PLAIN, LOGIN): {' '.join(mechanisms) or 'none'}", temporary=False, session=True)
        if code != 235:
            raise _from_reply(code, reply, session=True, what="authentication failed")

    def _token_login(self, username: str, token_source: Callable[[str | None], str], mechanism: str) -> None:
        """AUTH XOAUTH2 / OAUTHBEARER with a token from `token_source`; a refused token is renewed once."""
        smtp = self._smtp
        where = self.settings.describe()
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        if mechanism not in mechanisms:
            raise DeliveryError(f"{where} does not offer sign-in with a token (AUTH {mechanism}); it offers "
                                f"{' '.join(mechanisms) or 'no AUTH'}", temporary=False, session=True)
        rejected = None
        for _ in range(2):
            try:
                token = token_source(rejected)
            except TokenError as exc:
                raise DeliveryError(f"No sign-in token for {where}: {exc}", temporary=True, session=True) from None
            try:
                code, reply = smtp_token_login(smtp, username, token, mechanism)
                break
            except TokenRejected as exc:
                refusal, rejected = exc, token
        else:
            raise DeliveryError(f"{where}: {refusal}", temporary=True, session=True) from None
        if code != 235:
            raise _from_reply(code, reply, session=True, what="authentication failed")

    def _abort(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        """QUIT and close; never raises."""
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            self._abort()

    # --- messages -----------------------------------------------------------------------------

    def send(self, mail_from: str, recipients: list[str], data: bytes) -> SendResult:
        """Send one message; returns the server's final reply. Raises `DeliveryError`.

        A connection the server closed since the last message is reopened once; a
        failure after the message started (MAIL FROM accepted) is never retried here,
        since the server might have taken it.
        """
        if not recipients:
            raise DeliveryError("The message has no recipients", temporary=False)
        if self._smtp is None:
            self.open()
        elif self._used:
            try:
                return self._transaction(mail_from, recipients, data, stale_ok=True)
            except _StaleConnection:
                self.open()
        return self._transaction(mail_from, recipients, data, stale_ok=False)

    def _transaction(self, mail_from: str, recipients: list[str], data: bytes, stale_ok: bool) -> SendResult:
        smtp = self._smtp
        self._used = True
        options = []
        if "size" in smtp.esmtp_features:
            options.append(f"SIZE={len(data)}")
        if any(not a.isascii() for a in [mail_from, *recipients]):
            if not smtp.has_extn("smtputf8"):
                raise DeliveryError(f"{self.settings.describe()} does not accept internationalised addresses "
                                    "(SMTPUTF8)", temporary=False)
            options.append("SMTPUTF8")
        try:
            try:
                code, reply = smtp.mail(mail_from, options)
            except smtplib.SMTPServerDisconnected:
                if stale_ok:
                    raise _StaleConnection() from None
                raise
            if code != 250:
                self._reset()
                raise _from_reply(code, reply, what="sender refused")
            refused: dict[str, tuple[int, str]] = {}
            for rcpt in recipients:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, _words(reply))
            if len(refused) == len(recipients):
                self._reset()
                codes = [c for c, _ in refused.values()]
                first = min(refused.values(), key=lambda r: r[0])  # a 4xx one first: worth a retry
                text = "; ".join(f"{addr}: {c} {t}" for addr, (c, t) in refused.items())
                raise DeliveryError(text if len(refused) > 1 else first[1], None if len(refused) > 1 else first[0],
                                    temporary=any(is_temporary(c) for c in codes))
            try:
                code, reply = smtp.data(data)
            except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
                self._reset()
                raise _from_reply(exc.smtp_code, exc.smtp_error, what="DATA refused") from None
            if code != 250:
                self._reset()
                raise _from_reply(code, reply, what="message refused")
            return SendResult(code, _words(reply), refused)
        except (_StaleConnection, DeliveryError):
            raise
        except smtplib.SMTPResponseException as exc:
            self._abort()
            raise _from_reply(exc.smtp_code, exc.smtp_error) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._abort()
            raise DeliveryError(f"Connection to {self.settings.describe()} lost while sending: {_describe(exc)}",
                                temporary=True) from None

    def _reset(self) -> None:
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._abort()


class _StaleConnection(Exception):
    """A reused connection turned out closed before the message started: reconnect and go on."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a read timeout into "Connection unexpectedly closed: timed out".
        return "timed out" if "timed out" in str(exc) else "the server closed the connection"
    text = str(exc).strip() or exc.__class__.__name__
    return text

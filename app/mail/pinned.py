"""IMAP, POP3 and SMTP clients that connect to a checked address (`app.mail.netguard.Target`).

The standard clients resolve the server name themselves when they connect, so a name
checked a moment earlier could point somewhere else by then (DNS rebinding). These
subclasses replace only the step that opens the TCP socket: it goes to the address
that was checked, while everything else, TLS included (SNI and the certificate check,
implicit TLS and STARTTLS), still uses the server's name.
"""
from __future__ import annotations

import poplib
import smtplib
import ssl

from imapclient import IMAPClient
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS, wrap_socket

from app.mail.netguard import Target


# --- IMAP ------------------------------------------------------------------------------------------

class _IMAP4(IMAP4WithTimeout):
    def __init__(self, target: Target, timeout: float | None) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout)

    def _create_socket(self, timeout=None):
        return self._target.connect(timeout if timeout is not None else self._timeout)


class _IMAP4_TLS(IMAP4_TLS):
    def __init__(self, target: Target, ssl_context: ssl.SSLContext | None, timeout: float | None) -> None:
        self._target = target
        super().__init__(target.host, target.port, ssl_context, timeout)

    def _create_socket(self, timeout=None):
        sock = self._target.connect(timeout if timeout is not None else self._timeout)
        return wrap_socket(sock, self.ssl_context, self.host)


class PinnedIMAPClient(IMAPClient):
    """`IMAPClient` on `target` (implicit TLS with `ssl=True`; `starttls()` as usual)."""

    def __init__(self, target: Target, *, ssl: bool, ssl_context: ssl.SSLContext | None = None,
                 timeout: float | None = None) -> None:
        self._target = target
        super().__init__(target.host, port=target.port, ssl=ssl, ssl_context=ssl_context, timeout=timeout)

    def _create_IMAP4(self):
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _IMAP4_TLS(self._target, self.ssl_context, connect_timeout)
        return _IMAP4(self._target, connect_timeout)


# --- POP3 ------------------------------------------------------------------------------------------

class PinnedPOP3(poplib.POP3):
    """`poplib.POP3` on `target` (`stls()` verifies against the server's name)."""

    def __init__(self, target: Target, timeout: float | None) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout)

    def _create_socket(self, timeout):
        return self._target.connect(timeout)


class PinnedPOP3_SSL(poplib.POP3_SSL):
    """`poplib.POP3_SSL` on `target`."""

    def __init__(self, target: Target, timeout: float | None, context: ssl.SSLContext) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout=timeout, context=context)

    def _create_socket(self, timeout):
        return self.context.wrap_socket(self._target.connect(timeout), server_hostname=self.host)


# --- SMTP ------------------------------------------------------------------------------------------

class PinnedSMTP(smtplib.SMTP):
    """`smtplib.SMTP` on `target` (`starttls()` verifies against the server's name)."""

    def __init__(self, target: Target, **kwargs) -> None:
        self._target = target
        super().__init__(target.host, target.port, **kwargs)

    def _get_socket(self, host, port, timeout):
        return self._target.connect(timeout, self.source_address)


class PinnedSMTP_SSL(smtplib.SMTP_SSL):
    """`smtplib.SMTP_SSL` on `target`."""

    def __init__(self, target: Target, **kwargs) -> None:
        self._target = target
        super().__init__(target.host, target.port, **kwargs)

    def _get_socket(self, host, port, timeout):
        return self.context.wrap_socket(self._target.connect(timeout, self.source_address),
                                        server_hostname=self._host)

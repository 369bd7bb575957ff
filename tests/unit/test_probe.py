"""Test Connection against real servers: Dovecot (IMAP, POP3, plain and TLS) and aiosmtpd (AUTH, STARTTLS, SSL)."""
from __future__ import annotations

import time
from functools import partial

import pytest

from app.mail import probe as probes
from app.mail.probe import REASONS, NetPolicy, ServerSettings, default_port
from app.mail.tls import client_context
from tests.channel_fixtures import MAILBOX, NO_INBOX, PASSWORD
from tests.servers import SMTPServer

#: The servers here listen on 127.0.0.1: these tests allow private hosts (tests/unit/test_netguard.py and
#: tests/web/test_probe_guard.py prove the refusals).
LOCAL = NetPolicy(allow_private=True)
probe = partial(probes.probe, policy=LOCAL)
probe_incoming = partial(probes.probe_incoming, policy=LOCAL)
probe_outgoing = partial(probes.probe_outgoing, policy=LOCAL)

MESSAGE = b"From: carol@example.com\r\nTo: help@acme.test\r\nSubject: parcel\r\n\r\nWhere is it?\r\n"


@pytest.fixture(scope="module")
def ctx(mail_servers):
    return client_context(str(mail_servers.ca_file))


def imap(port, security="none"):
    return ServerSettings("imap", "127.0.0.1", port, security)


def pop3(port, security="none"):
    return ServerSettings("pop3", "127.0.0.1", port, security)


def smtp(port, security="starttls"):
    return ServerSettings("smtp", "127.0.0.1", port, security)


def _flags_and_count(dovecot):
    from imapclient import IMAPClient

    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(MAILBOX, PASSWORD)
        info = client.select_folder("INBOX", readonly=True)
        return info[b"EXISTS"], client.get_flags(client.search("ALL"))


def test_default_ports():
    assert [default_port(*k) for k in (("imap", "ssl"), ("imap", "starttls"), ("pop3", "ssl"), ("pop3", "starttls"),
                                       ("smtp", "ssl"), ("smtp", "starttls"))] == [993, 143, 995, 110, 465, 587]


@pytest.mark.parametrize("port_name, security", [("imap", "none"), ("imap", "starttls"), ("imaps", "ssl")])
def test_imap_signs_in_and_opens_inbox_read_only_changing_nothing(mail_servers, ctx, port_name, security):
    dovecot = mail_servers.dovecot
    dovecot.append(MAILBOX, PASSWORD, [MESSAGE])
    before = _flags_and_count(dovecot)
    result = probe_incoming(imap(dovecot.ports[port_name], security), MAILBOX, PASSWORD, 5, ctx)
    assert result.ok, result
    assert result.side == "incoming" and f"opened INBOX read-only ({before[0]} message" in result.message
    assert _flags_and_count(dovecot) == before  # no \Seen, no \Recent change, nothing moved


@pytest.mark.parametrize("port_name, security", [("pop3", "none"), ("pop3", "starttls"), ("pop3s", "ssl")])
def test_pop3_signs_in_and_counts_without_deleting(mail_servers, ctx, port_name, security):
    dovecot = mail_servers.dovecot
    dovecot.append(MAILBOX, PASSWORD, [MESSAGE])
    count = _flags_and_count(dovecot)[0]
    result = probe_incoming(pop3(dovecot.ports[port_name], security), MAILBOX, PASSWORD, 5, ctx)
    assert result.ok, result
    assert f"{count} messages waiting" in result.message
    assert _flags_and_count(dovecot)[0] == count


@pytest.mark.parametrize("which, security", [("smtp_starttls", "starttls"), ("smtp_implicit", "ssl")])
def test_smtp_ehlo_tls_auth_and_nothing_is_sent(mail_servers, ctx, which, security):
    server = getattr(mail_servers, which)
    result = probe_outgoing(smtp(server.port, security), MAILBOX, PASSWORD, 5, ctx)
    assert result.ok, result
    assert f"signed in as {MAILBOX}; nothing was sent" in result.message
    assert server.messages == []


def test_untrusted_certificate_is_a_tls_failure(mail_servers):
    result = probe_incoming(imap(mail_servers.dovecot.ports["imaps"], "ssl"), MAILBOX, PASSWORD, 5, client_context())
    assert (result.ok, result.reason) == (False, "tls_failure")
    assert "certificate could not be verified" in result.detail and REASONS["tls_failure"] in result.message


def test_ssl_to_a_plain_port_and_starttls_not_offered_are_tls_failures(mail_servers, ctx, tmp_path):
    assert probe_incoming(imap(mail_servers.dovecot.ports["imap"], "ssl"), MAILBOX, PASSWORD, 5, ctx).reason == \
        "tls_failure"
    plain = SMTPServer(tmp_path)
    try:
        result = probe_outgoing(smtp(plain.port, "starttls"), MAILBOX, PASSWORD, 5, ctx)
        assert (result.reason, result.detail) == ("tls_failure", "the server does not offer STARTTLS")
        no_auth = probe_outgoing(smtp(plain.port, "none"), MAILBOX, PASSWORD, 5, ctx)
        assert no_auth.reason == "auth_unavailable"
    finally:
        plain.stop()


def test_wrong_password_imap_pop3_smtp(mail_servers, ctx, penalty_dovecots):
    from concurrent.futures import ThreadPoolExecutor

    # Dovecots of their own: failed logins slow down later ones from the same address.
    first, second = penalty_dovecots
    with ThreadPoolExecutor(2) as pool:  # both at once, so Dovecot's failure delay is paid once
        imap_job = pool.submit(probe_incoming, imap(first.ports["imaps"], "ssl"), MAILBOX, "wrong", 10,
                               client_context(str(first.cert)))
        pop3_job = pool.submit(probe_incoming, pop3(second.ports["pop3"]), MAILBOX, "wrong", 10, ctx)
    result = imap_job.result()
    assert (result.ok, result.reason) == (False, "wrong_credentials")
    assert "AUTHENTICATIONFAILED" in result.detail and "wrong" not in result.message
    result = pop3_job.result()
    assert (result.reason, result.detail) == ("wrong_credentials", "-ERR [AUTH] Authentication failed.")
    result = probe_outgoing(smtp(mail_servers.smtp_starttls.port), MAILBOX, "wrong", 5, ctx)
    assert (result.reason, result.message) == (
        "wrong_credentials", f"SMTP at 127.0.0.1:{mail_servers.smtp_starttls.port} (STARTTLS): "
                             "The server refused the user name or password.")


def test_mailbox_that_cannot_be_opened(mail_servers, ctx):
    for settings in (imap(mail_servers.dovecot.ports["imap"]), pop3(mail_servers.dovecot.ports["pop3"])):
        result = probe_incoming(settings, NO_INBOX, PASSWORD, 5, ctx)
        assert (result.ok, result.reason) == (False, "mailbox_missing"), result
        assert result.message.endswith("Signed in, but the mailbox could not be opened.")


def test_closed_port_and_unknown_name(mail_servers, ctx):
    port = mail_servers.closed_port()
    assert probe_incoming(imap(port, "ssl"), MAILBOX, PASSWORD, 5, ctx).reason == "connection_refused"
    assert probe_outgoing(smtp(port), MAILBOX, PASSWORD, 5, ctx).reason == "connection_refused"
    unknown = ServerSettings("imap", "no-such-host.invalid", 993, "ssl")
    assert probe_incoming(unknown, MAILBOX, PASSWORD, 5, ctx).reason == "name_not_found"


@pytest.mark.parametrize("settings", [
    lambda port: imap(port, "ssl"), lambda port: imap(port, "none"), lambda port: pop3(port),
    lambda port: smtp(port, "starttls"), lambda port: smtp(port, "ssl"),
])
def test_a_server_that_never_answers_times_out(mail_servers, ctx, settings):
    started = time.monotonic()
    server = settings(mail_servers.silent.port)
    result = (probe_outgoing if server.protocol == "smtp" else probe_incoming)(server, MAILBOX, PASSWORD, 0.5, ctx)
    assert (result.ok, result.reason) == (False, "timed_out"), result
    assert time.monotonic() - started < 3


def test_probe_runs_both_sides_in_parallel(mail_servers, ctx):
    started = time.monotonic()
    results = probe(imap(mail_servers.silent.port, "ssl"), smtp(mail_servers.smtp_starttls.port), MAILBOX, PASSWORD,
                    1, ctx)
    assert [(r.side, r.ok) for r in results] == [("incoming", False), ("outgoing", True)]
    both_silent = probe(imap(mail_servers.silent.port, "ssl"), smtp(mail_servers.silent.port, "ssl"), MAILBOX,
                        PASSWORD, 1, ctx)
    assert [r.reason for r in both_silent] == ["timed_out", "timed_out"]
    assert time.monotonic() - started < 3.5  # about two timeouts, not three


def test_unknown_incoming_protocol_is_a_programming_error(ctx):
    with pytest.raises(ValueError, match="ftp"):
        probe_incoming(ServerSettings("ftp", "127.0.0.1", 21, "none"), "u", "p", 1, ctx)


class _ClosingServer:
    """Accepts TCP connections and closes each at once without a word (a dropped connection)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("settings", [
    lambda port: imap(port, "none"), lambda port: imap(port, "ssl"), lambda port: pop3(port, "none"),
    lambda port: pop3(port, "ssl"), lambda port: smtp(port, "none"), lambda port: smtp(port, "ssl"),
])
def test_a_silent_server_did_not_answer_in_time_with_the_seconds(mail_servers, ctx, settings):
    server = settings(mail_servers.silent.port)
    result = (probe_outgoing if server.protocol == "smtp" else probe_incoming)(server, MAILBOX, PASSWORD, 0.5, ctx)
    assert result.reason == "timed_out", result
    assert "The server did not answer in time (0.5 s)." in result.message, result
    assert "closed" not in result.message and result.detail == ""


@pytest.mark.parametrize("settings", [
    lambda port: imap(port, "none"), lambda port: imap(port, "ssl"), lambda port: pop3(port, "none"),
    lambda port: pop3(port, "ssl"), lambda port: smtp(port, "none"), lambda port: smtp(port, "ssl"),
])
def test_a_dropped_connection_is_not_a_timeout(ctx, settings):
    closing = _ClosingServer()
    try:
        server = settings(closing.port)
        started = time.monotonic()
        result = (probe_outgoing if server.protocol == "smtp" else probe_incoming)(server, MAILBOX, PASSWORD, 5, ctx)
    finally:
        closing.close()
    assert result.reason in ("connection_closed", "tls_failure"), result
    if server.security != "ssl":  # a TLS handshake cut short is a TLS failure, in ssl's own words
        assert result.reason == "connection_closed"
        assert "The server closed the connection without an answer." in result.message
    assert "in time" not in result.message
    assert time.monotonic() - started < 3  # no waiting for the timeout

"""The SMTP client against real SMTP servers: TLS modes, AUTH, connection reuse, error classification."""
from __future__ import annotations

import ssl
import time

import pytest

from app.mail.smtp import DeliveryError, SMTPSession, SMTPSettings, parse_relay_url
from tests.servers import SilentServer, SMTPServer, free_port

RAW = b"From: a@example.com\r\nTo: x@example.net\r\nSubject: hi\r\n\r\nbody\r\n.leading dot\r\n"


def _ctx(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert))


@pytest.fixture(scope="module")
def starttls_auth(tmp_path_factory):
    server = SMTPServer(tmp_path_factory.mktemp("smtp"), users={"agent@acme.test": "pässwörd"}, tls="starttls")
    yield server
    server.stop()


def test_parse_relay_url():
    s = parse_relay_url("smtp://relay%40x:p%C3%A4ss%3Aword@relay.example:2525")
    assert (s.host, s.port, s.security, s.username, s.password) == ("relay.example", 2525, "starttls", "relay@x", "päss:word")
    assert "päss" not in repr(s)
    assert parse_relay_url("smtps://relay.example").port == 465 and parse_relay_url("smtps://r.x").security == "ssl"
    plain = parse_relay_url("smtp://127.0.0.1:8025?tls=none")
    assert (plain.security, plain.username, plain.password) == ("none", None, None)
    assert parse_relay_url("smtp://relay.example").port == 587
    for bad in ("http://x", "smtp://", "smtp://x?tls=maybe", "smtp://x:99999"):
        with pytest.raises(ValueError):
            parse_relay_url(bad)


def test_starttls_auth_utf8_password_and_one_connection_for_several_messages(starttls_auth):
    before = len(starttls_auth.messages)
    settings = SMTPSettings("127.0.0.1", starttls_auth.port, "starttls", "agent@acme.test", "pässwörd")
    with SMTPSession(settings, context=_ctx(starttls_auth), helo_name="mail.pigeonhole.test") as smtp:
        results = [smtp.send("agent@acme.test", ["x@example.net", "y@example.net"], RAW) for _ in range(3)]
    assert smtp.connections == 1
    assert [r.code for r in results] == [250, 250, 250] and "OK queued" in results[0].text
    got = starttls_auth.messages[before:]
    assert len(got) == 3 and len({m["peer"] for m in got}) == 1
    assert got[0]["login"] == "agent@acme.test" and got[0]["rcpt_tos"] == ["x@example.net", "y@example.net"]
    assert got[0]["data"].replace(b"\r\n", b"\n") == RAW.replace(b"\r\n", b"\n")  # dot-stuffing undone by the server


def test_wrong_password_is_a_permanent_session_error_with_the_servers_words(starttls_auth):
    settings = SMTPSettings("127.0.0.1", starttls_auth.port, "starttls", "agent@acme.test", "wrong")
    with SMTPSession(settings, context=_ctx(starttls_auth)) as smtp, pytest.raises(DeliveryError) as info:
        smtp.send("agent@acme.test", ["x@example.net"], RAW)
    err = info.value
    assert err.code == 535 and not err.temporary and err.session
    assert "535" in str(err) and "wrong" not in str(err)


def test_untrusted_certificate_is_a_temporary_connection_error(starttls_auth):
    settings = SMTPSettings("127.0.0.1", starttls_auth.port, "starttls", "agent@acme.test", "pässwörd")
    with SMTPSession(settings, context=ssl.create_default_context()) as smtp, pytest.raises(DeliveryError) as info:
        smtp.send("agent@acme.test", ["x@example.net"], RAW)
    assert info.value.temporary and info.value.session
    assert "certificate not trusted" in str(info.value)


def test_implicit_tls(tmp_path):
    server = SMTPServer(tmp_path, tls="implicit")
    try:
        with SMTPSession(SMTPSettings("127.0.0.1", server.port, "ssl"), context=_ctx(server)) as smtp:
            assert smtp.send("a@example.com", ["x@example.net"], RAW).code == 250
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_starttls_required_but_not_offered_is_permanent(tmp_path):
    server = SMTPServer(tmp_path)
    try:
        with SMTPSession(SMTPSettings("127.0.0.1", server.port, "starttls")) as smtp, \
                pytest.raises(DeliveryError, match="does not offer STARTTLS") as info:
            smtp.send("a@example.com", ["x@example.net"], RAW)
        assert not info.value.temporary and server.messages == []
    finally:
        server.stop()


def test_451_is_temporary_550_permanent_and_the_connection_goes_on(tmp_path):
    server = SMTPServer(tmp_path, script=["451 4.3.0 Try again later", "550 5.7.1 Message rejected as spam"])
    try:
        with SMTPSession(SMTPSettings("127.0.0.1", server.port, "none")) as smtp:
            with pytest.raises(DeliveryError) as first:
                smtp.send("a@example.com", ["x@example.net"], RAW)
            with pytest.raises(DeliveryError) as second:
                smtp.send("a@example.com", ["x@example.net"], RAW)
            assert smtp.send("a@example.com", ["x@example.net"], RAW).code == 250
        assert (first.value.code, first.value.temporary, str(first.value)) == (451, True, "451 4.3.0 Try again later")
        assert (second.value.code, second.value.temporary) == (550, False)
        assert str(second.value) == "550 5.7.1 Message rejected as spam" and not second.value.session
        assert smtp.connections == 1 and len(server.messages) == 1
    finally:
        server.stop()


def test_drop_in_the_middle_of_data_is_temporary_and_the_next_message_reconnects(tmp_path):
    server = SMTPServer(tmp_path, script=["drop"])
    try:
        with SMTPSession(SMTPSettings("127.0.0.1", server.port, "none")) as smtp:
            with pytest.raises(DeliveryError, match="lost while sending") as info:
                smtp.send("a@example.com", ["x@example.net"], RAW)
            assert info.value.temporary and info.value.code is None and not info.value.session
            assert smtp.send("a@example.com", ["x@example.net"], RAW).code == 250
        assert smtp.connections == 2 and len(server.messages) == 1
    finally:
        server.stop()


def test_a_reused_connection_the_server_closed_while_idle_is_reopened(tmp_path):
    server = SMTPServer(tmp_path, idle_timeout=0.3)
    try:
        with SMTPSession(SMTPSettings("127.0.0.1", server.port, "none")) as smtp:
            smtp.send("a@example.com", ["x@example.net"], RAW)
            time.sleep(0.8)
            assert smtp.send("a@example.com", ["x@example.net"], RAW).code == 250
        assert smtp.connections == 2 and len(server.messages) == 2
    finally:
        server.stop()


def test_refused_recipients(tmp_path):
    from aiosmtpd.controller import Controller

    accepted = []

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, options):
            if address.startswith("gone"):
                return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
            if address.startswith("full"):
                return "452 4.2.2 Mailbox full"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            accepted.append(list(envelope.rcpt_tos))
            return "250 2.0.0 OK id=42"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with SMTPSession(SMTPSettings("127.0.0.1", port, "none")) as smtp:
            result = smtp.send("a@example.com", ["ok@example.net", "gone@example.net"], RAW)
            with pytest.raises(DeliveryError) as only_gone:
                smtp.send("a@example.com", ["gone@example.net"], RAW)
            with pytest.raises(DeliveryError) as mixed:
                smtp.send("a@example.com", ["gone@example.net", "full@example.net"], RAW)
    finally:
        controller.stop()
    assert accepted == [["ok@example.net"]]
    assert result.code == 250 and result.refused["gone@example.net"][0] == 550 and "User unknown" in str(
        result.refused)
    assert only_gone.value.code == 550 and not only_gone.value.temporary and "User unknown" in str(only_gone.value)
    assert mixed.value.temporary and "full@example.net: 452" in str(mixed.value)


def test_connection_refused_and_silence_are_temporary():
    closed = free_port()
    with SMTPSession(SMTPSettings("127.0.0.1", closed, "none"), timeout=2) as smtp, \
            pytest.raises(DeliveryError, match="Cannot connect to 127.0.0.1") as info:
        smtp.send("a@example.com", ["x@example.net"], RAW)
    assert info.value.temporary and info.value.session
    silent = SilentServer()
    try:
        started = time.monotonic()
        with SMTPSession(SMTPSettings("127.0.0.1", silent.port, "none"), timeout=0.5) as smtp, \
                pytest.raises(DeliveryError, match="timed out") as info:
            smtp.send("a@example.com", ["x@example.net"], RAW)
        assert info.value.temporary and time.monotonic() - started < 5
    finally:
        silent.stop()


def test_no_recipients_and_unknown_security_are_refused():
    with pytest.raises(ValueError, match="unknown SMTP security"):
        SMTPSettings("h", 25, "tls")
    with SMTPSession(SMTPSettings("127.0.0.1", 1, "none")) as smtp, pytest.raises(DeliveryError) as info:
        smtp.send("a@example.com", [], RAW)
    assert not info.value.temporary

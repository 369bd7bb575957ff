"""The real servers the tests start (Dovecot, SMTP) behave as the other tests assume."""
from __future__ import annotations

import imaplib
import poplib
import smtplib
import ssl

import pytest

from tests.servers import DovecotServer, SilentServer, SMTPServer


@pytest.fixture(scope="module")
def dovecot():
    server = DovecotServer()
    server.add_user("alice@acme.test", "alice-pw")
    yield server
    server.stop()


def test_dovecot_imap_pop3_plain_and_tls(dovecot):
    uids = dovecot.append("alice@acme.test", "alice-pw", [b"From: a@example.com\r\nSubject: one\r\n\r\nbody\r\n"])
    assert uids[0] is not None
    imap = imaplib.IMAP4("127.0.0.1", dovecot.ports["imap"])
    imap.login("alice@acme.test", "alice-pw")
    assert imap.select("INBOX", readonly=True)[0] == "OK"
    imap.logout()
    ctx = ssl.create_default_context(cafile=str(dovecot.cert))
    pop = poplib.POP3_SSL("127.0.0.1", dovecot.ports["pop3s"], context=ctx)
    pop.user("alice@acme.test")
    pop.pass_("alice-pw")
    assert pop.stat()[0] >= 1
    pop.quit()
    with pytest.raises(imaplib.IMAP4.error):
        bad = imaplib.IMAP4("127.0.0.1", dovecot.ports["imap"])
        try:
            bad.login("alice@acme.test", "wrong")
        finally:
            bad.shutdown()


def test_smtp_server_auth_starttls_and_script(tmp_path):
    server = SMTPServer(tmp_path, users={"bob": "pw"}, tls="starttls", script=["451 4.3.0 later", "drop"])
    ctx = ssl.create_default_context(cafile=str(server.cert))
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as c:
            c.starttls(context=ctx)
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login("bob", "wrong")
            c.login("bob", "pw")
            with pytest.raises(smtplib.SMTPDataError, match="later"):
                c.sendmail("a@b.c", ["x@y.z"], b"Subject: 1\r\n\r\nhi\r\n")
            with pytest.raises(smtplib.SMTPServerDisconnected):
                c.sendmail("a@b.c", ["x@y.z"], b"Subject: 2\r\n\r\nhi\r\n")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as c:
            c.starttls(context=ctx)
            c.login("bob", "pw")
            c.sendmail("a@b.c", ["x@y.z"], b"Subject: 3\r\n\r\nhi\r\n")
        assert [m["data"].split(b"\r\n")[0] for m in server.messages] == [b"Subject: 3"]
        assert server.messages[0]["login"] == "bob" and server.messages[0]["rcpt_tos"] == ["x@y.z"]
    finally:
        server.stop()


def test_smtp_implicit_tls(tmp_path):
    server = SMTPServer(tmp_path, tls="implicit")
    try:
        with smtplib.SMTP_SSL("127.0.0.1", server.port, timeout=5,
                              context=ssl.create_default_context(cafile=str(server.cert))) as c:
            c.sendmail("a@b.c", ["x@y.z"], b"Subject: t\r\n\r\nhi\r\n")
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_silent_server_times_out(tmp_path):
    server = SilentServer()
    try:
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
            smtplib.SMTP("127.0.0.1", server.port, timeout=0.5)
    finally:
        server.stop()


def test_free_ports_are_all_different():
    """Dovecot's four listeners once got the same port twice ("duplicate listener"); picks are held until all are made."""
    from tests.servers import free_ports

    ports = free_ports(64)
    assert len(set(ports)) == 64

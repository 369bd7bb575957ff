"""The runtime refuses what Test Connection refuses: private hosts and unencrypted sign-in, when polling and sending.

Real Dovecot and aiosmtpd on 127.0.0.1. The test config allows private hosts; each test turns the
setting (or the loopback exception for unencrypted sign-in) off to prove the refusal, and back on
to prove the same address then works.
"""
from __future__ import annotations

import pytest

from app.mail.smtp import DeliveryError, SMTPSession
from app.runtime.outbound import sending_address, transport_settings
from app.runtime.poll import poll_address
from app.runtime.tls import configured_context
from tests.mail.conftest import make_address, message
from tests.servers import SMTPServer

MAIL = b"From: help@acme.test\r\nTo: carla@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def plain_smtp(tmp_path):
    server = SMTPServer(tmp_path / "plain-smtp", users={"help@acme.test": "smtp-pw"})
    yield server
    server.stop()


def send_once(address_id: int):
    with SMTPSession(transport_settings(sending_address(address_id)), context=configured_context()) as smtp:
        return smtp.send("help@acme.test", ["carla@example.com"], MAIL)


def test_polling_refuses_a_published_address_on_a_private_host(tls_app, db, dovecot, mailbox_user):
    login, password = mailbox_user
    tls_app.config["MAILBOX_BACKFILL"] = "7"
    dovecot.append(login, password, [message(subject="kept for later")])
    address = make_address("help@acme.test", "custom", usage="inbound", username=login, password=password,
                           incoming_protocol="imap", incoming_host="127.0.0.1", incoming_port=dovecot.ports["imaps"],
                           incoming_security="ssl")
    tls_app.config["MAIL_ALLOW_PRIVATE_HOSTS"] = False
    refused = poll_address(address.id)
    assert refused.fetched == 0
    assert refused.error == (f"IMAP at 127.0.0.1:{dovecot.ports['imaps']} (SSL): The server is at an address "
                             "Pigeonhole does not connect to (loopback, link-local or private network). Use the "
                             "server's public name. (127.0.0.1 is a loopback address, which Pigeonhole does not "
                             "connect to)")
    tls_app.config["MAIL_ALLOW_PRIVATE_HOSTS"] = True
    allowed = poll_address(address.id)
    assert allowed.error is None and allowed.fetched == 1


def test_polling_refuses_unencrypted_sign_in_unless_the_address_allows_it(tls_app, db, dovecot, mailbox_user):
    login, password = mailbox_user
    fields = dict(usage="inbound", username=login, password=password, incoming_protocol="pop3",
                  incoming_host="127.0.0.1", incoming_port=dovecot.ports["pop3"], incoming_security="none")
    refused_address = make_address("help@acme.test", "custom", **fields)
    allowed_address = make_address("desk@acme.test", "custom", allow_plaintext_auth=True, **fields)
    tls_app.config["MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK"] = False
    refused = poll_address(refused_address.id)
    assert "Signing in without encryption was refused; nothing was sent." in refused.error
    assert "Allow unencrypted sign-in" in refused.error and password not in refused.error
    assert poll_address(allowed_address.id).error is None


def test_sending_refuses_private_hosts_and_unencrypted_sign_in(tls_app, db, plain_smtp):
    address = make_address("help@acme.test", "custom", usage="outbound", password="smtp-pw",
                           outgoing_host="127.0.0.1", outgoing_port=plain_smtp.port, outgoing_security="none")
    tls_app.config["MAIL_ALLOW_PRIVATE_HOSTS"] = False
    with pytest.raises(DeliveryError) as refused:
        send_once(address.id)
    assert not refused.value.temporary and refused.value.session
    assert "127.0.0.1 is a loopback address, which Pigeonhole does not connect to" in str(refused.value)
    tls_app.config.update(MAIL_ALLOW_PRIVATE_HOSTS=True, MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK=False)
    with pytest.raises(DeliveryError) as refused:
        send_once(address.id)
    assert not refused.value.temporary and "Allow unencrypted sign-in" in str(refused.value)
    assert plain_smtp.auth_attempts == [] and plain_smtp.messages == []

    allowed = make_address("desk@acme.test", "custom", usage="outbound", username="help@acme.test",
                           password="smtp-pw", outgoing_host="127.0.0.1", outgoing_port=plain_smtp.port,
                           outgoing_security="none", allow_plaintext_auth=True)
    assert send_once(allowed.id).code == 250
    assert plain_smtp.auth_attempts == ["help@acme.test"] and len(plain_smtp.messages) == 1

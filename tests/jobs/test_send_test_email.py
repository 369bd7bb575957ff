"""Send test email, in the runtime: rendered with the template design, queued on the send queue, signed,
sent through the real SMTP server (aiosmtpd) and verified against the loopback DNS; failures keep the reason."""
from __future__ import annotations

import email
from email import policy

import dkim
import pytest
from sqlalchemy import func, select

from app.mail.dnscheck import Resolver
from app.models.inbox import Conversation, Message
from app.models.send_tests import SendTest
from app.queues import get_queue
from app.runtime.dkim import add_key, record_of, verify_key
from app.runtime.outbound import (CannotSend, InvalidRecipient, TooManyTests, deliver_send_test,
                                  enqueue_due_send_tests, queue_send_test)
from tests.factories import make_sending_address, make_user
from tests.servers import SMTPServer

DOMAIN = "mail.pigeonhole.test"


def _row(db, test_id) -> SendTest:
    db.session.expire_all()
    return db.session.get(SendTest, test_id)


def test_a_test_email_is_rendered_signed_sent_and_verifies_and_touches_no_conversation(app, db, dns, relay):
    address = make_sending_address(forwarded_from="support@acme.test", template_enabled=True,
                                   header_html="<p>ACME HEADER {{ display_name }}</p>",
                                   footer_html="<p>ACME FOOTER {{ address }}</p>")
    key = add_key(DOMAIN, "s1")
    dns.txt(record_of(key)["name"], record_of(key)["value"])
    verify_key(key)
    db.session.commit()

    test = queue_send_test(address.id, "Ada <ada@example.org>")
    db.session.commit()
    assert f"send-test-{test.id}" in get_queue("send").job_ids  # enqueued on the send queue after the commit
    assert deliver_send_test(test.id) == "sent"

    [got] = relay.messages
    assert got["rcpt_tos"] == ["ada@example.org"]  # the one recipient: no Bcc to the contact-center mailbox
    assert got["mail_from"] == address.address
    data = got["data"]
    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=Resolver(dns.address, timeout=1).dkim_txt)
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert parsed["Subject"] == f"Test email from Pigeonhole ({address.address})"
    html = parsed.get_body(("html",)).get_content()
    assert "ACME HEADER Support" in html and f"ACME FOOTER {address.address}" in html
    assert "test email from Pigeonhole" in html and "Sent " in html
    assert parsed["Reply-To"] and "support@acme.test" in parsed["Reply-To"]  # the same rendering as a reply

    row = _row(db, test.id)
    assert (row.delivery_status, row.smtp_code, row.delivery_attempts) == ("sent", 250, 1)
    assert row.dkim_signature and data.startswith(row.dkim_signature.encode())
    # Not customer traffic: nothing in the workspace.
    assert db.session.scalar(select(func.count(Message.id))) == 0
    assert db.session.scalar(select(func.count(Conversation.id))) == 0


def test_a_refusal_fails_with_the_servers_words(app, db, tmp_path):
    server = SMTPServer(tmp_path / "relay", script=["550 5.7.1 Relaying denied for test"])
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    try:
        test = queue_send_test(make_sending_address().id, "ada@example.org")
        db.session.commit()
        assert deliver_send_test(test.id) == "failed"
        row = _row(db, test.id)
        assert row.smtp_code == 550 and "Relaying denied for test" in row.delivery_error
        assert deliver_send_test(test.id) == "failed" and len(server.messages) == 0  # final: not sent again
    finally:
        server.stop()


def test_a_temporary_error_retries_with_the_reason_then_the_sweep_sends_it(app, db, tmp_path):
    server = SMTPServer(tmp_path / "relay", script=["451 4.3.0 Greylisted, try again"])
    app.config.update(SMTP_RELAY_URL=f"smtp://127.0.0.1:{server.port}?tls=none", SEND_RETRY_BASE_SECONDS=0,
                      SEND_RETRY_MAX_SECONDS=0)
    try:
        test = queue_send_test(make_sending_address().id, "ada@example.org")
        db.session.commit()
        get_queue("send").empty()
        assert deliver_send_test(test.id) == "retrying"
        row = _row(db, test.id)
        assert "Greylisted" in row.delivery_error and row.next_attempt_at is not None
        db.session.rollback()
        assert enqueue_due_send_tests() == 1
        assert f"send-test-{test.id}" in get_queue("send").job_ids
        assert deliver_send_test(test.id) == "sent" and len(server.messages) == 1
        assert _row(db, test.id).delivery_attempts == 2
    finally:
        server.stop()


def test_unreachable_server_retries_with_the_connection_error(app, db):
    test = queue_send_test(make_sending_address().id, "ada@example.org")  # the default relay: nothing listens
    db.session.commit()
    assert deliver_send_test(test.id) == "retrying"
    assert "Cannot connect to 127.0.0.1:9" in _row(db, test.id).delivery_error


def test_only_published_sending_addresses_and_one_valid_recipient(app, db):
    unpublished = make_sending_address(publish=False)
    with pytest.raises(CannotSend, match="has not been published yet"):
        queue_send_test(unpublished.id, "ada@example.org")
    inbound = make_sending_address(usage="inbound")
    with pytest.raises(CannotSend, match="inbound-only"):
        queue_send_test(inbound.id, "ada@example.org")
    address = make_sending_address()
    for bad, words in [("", "Enter the email address"), ("a@example.org, b@example.org", "Enter one email address"),
                       ("not an address", "is not an email address")]:
        with pytest.raises(InvalidRecipient, match=words):
            queue_send_test(address.id, bad)
    assert db.session.scalar(select(func.count(SendTest.id))) == 0


def test_an_admin_may_send_a_limited_number_per_hour(app, db):
    app.config["SEND_TEST_LIMIT_PER_HOUR"] = 2
    admin, other = make_user("admin"), make_user("admin")
    address = make_sending_address()
    for _ in range(2):
        queue_send_test(address.id, "ada@example.org", requested_by=admin.id)
    db.session.commit()
    with pytest.raises(TooManyTests, match="You sent 2 test emails in the last hour"):
        queue_send_test(address.id, "ada@example.org", requested_by=admin.id)
    queue_send_test(address.id, "ada@example.org", requested_by=other.id)  # per admin
    queue_send_test(address.id, "ada@example.org")  # the command line is not limited
    db.session.commit()
    assert db.session.scalar(select(func.count(SendTest.id))) == 4


def test_an_address_unpublished_after_queueing_fails_with_the_reason(app, db, relay):
    from app.models.channels import EmailAddress

    address = make_sending_address()
    test = queue_send_test(address.id, "ada@example.org")
    db.session.commit()
    db.session.get(EmailAddress, address.id).enabled = False
    db.session.get(EmailAddress, address.id).published = None
    db.session.commit()
    assert deliver_send_test(test.id) == "failed"
    assert "has not been published yet" in _row(db, test.id).delivery_error and relay.messages == []


def test_two_requests_at_once_never_pass_the_hourly_limit(app, db):
    """Two Send test email requests of one admin at the same moment, one test left: one is queued, never both."""
    import threading

    app.config["SEND_TEST_LIMIT_PER_HOUR"] = 1
    admin_id, address_id = make_user("admin").id, make_sending_address().id
    db.session.commit()
    both_counted = threading.Barrier(2)
    outcomes = []

    def request():
        with app.app_context():
            try:
                queue_send_test(address_id, "ada@example.org", requested_by=admin_id)
                try:  # both requests have counted before either commits, unless one waits for the other
                    both_counted.wait(timeout=2)
                except threading.BrokenBarrierError:
                    pass
                db.session.commit()
                outcomes.append("queued")
            except TooManyTests:
                outcomes.append("too many")
            finally:
                db.session.rollback()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(SendTest.id))) == 1
    assert sorted(outcomes) == ["queued", "too many"]

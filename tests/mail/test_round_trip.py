"""Round trip through the real paths: a customer writes, an agent's reply is sent to a real SMTP
server, the customer's client answers (keeping only In-Reply-To, only References, or only the
subject) and the answer threads back into the same conversation; a DSN for the sent reply marks
it bounced and the agent sees it."""
from __future__ import annotations

import pytest

from app.blobs import blob_store
from app.runtime.ingest import RawItem, ingest
from app.runtime.outbound import deliver_message, send_reply
from app.models.inbox import Message
from tests.factories import make_sending_address, make_user
from tests.mua import customer_reply
from tests.servers import SMTPServer

FIRST = (b"From: Carol Customer <carol@example.com>\r\nTo: support@mail.pigeonhole.test\r\n"
         b"Subject: Where is my parcel?\r\nMessage-ID: <first-1@example.com>\r\n"
         b"Date: Fri, 27 Nov 2026 09:00:00 +0000\r\n\r\nHello, where is my parcel?\r\n")


def _ingest(address, raw: bytes):
    return ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "smtp", raw=raw)])[0]


@pytest.fixture
def sent(app, db, tmp_path):
    """(address, conversation id, reply Message, the bytes the SMTP server received)."""
    address = make_sending_address("support@mail.pigeonhole.test", forwarded_from="support@acme.test",
                                   display_name="Acme Support")
    first = _ingest(address, FIRST)
    assert first.status == "created"
    agent = make_user("agent", name="Alex")
    server = SMTPServer(tmp_path / "smtp")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    try:
        reply = send_reply(first.conversation_id, agent.id, "<p>It left our warehouse this morning.</p>")
        db.session.commit()
        assert deliver_message(reply.id)["sent"] == 1
    finally:
        server.stop()
    return address, first.conversation_id, reply, server.messages[0]["data"]


@pytest.mark.parametrize("keep", ["both", "in-reply-to", "references", "subject"])
def test_the_customers_answer_threads_back(sent, db, keep):
    address, conversation_id, reply, data = sent
    answer = customer_reply(data, keep=keep, body="Thanks! And when will it arrive?")
    result = _ingest(address, answer)
    assert result.status == "threaded", result
    assert result.conversation_id == conversation_id
    assert db.session.get(Message, result.message_row_id).text.startswith("Thanks! And when will it arrive?")


def test_our_reply_tells_the_customer_to_answer_the_contact_center(sent):
    from email import message_from_bytes, policy

    _address, _conversation_id, reply, data = sent
    mail = message_from_bytes(data, policy=policy.default)
    assert mail["Reply-To"] == "support@acme.test" and mail["In-Reply-To"] == "<first-1@example.com>"
    assert mail["Message-ID"] == reply.message_id


def test_a_dsn_for_the_sent_reply_marks_it_bounced_and_the_agent_sees_it(sent, db, client, login_as):
    address, conversation_id, reply, _data = sent
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: support@mail.pigeonhole.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; carol@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        "Diagnostic-Code: smtp; 552 5.2.2 <carol@example.com>: mailbox full\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {reply.message_id}\r\n"
        "Subject: Re: Where is my parcel?\r\n--b--\r\n").encode()
    result = _ingest(address, dsn)
    assert result.status == "bounce" and result.conversation_id == conversation_id
    db.session.refresh(reply)
    assert reply.delivery_status == "bounced" and "mailbox full" in reply.delivery_error
    login_as("supervisor")
    page = client.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)  # the reply's tile says so
    assert f'id="delivery-{reply.id}"' in page and "Bounced" in page and "mailbox full" in page
    status = client.get(f"/inbox/m/{reply.id}/status", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Bounced" in status and "mailbox full" in status and ">Retry<" not in status

"""The ingest service: dedupe, threading rules, reopen, bounces, auto-replies, broken mail, flows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.blobs import blob_store
from app.runtime.ingest import RawItem, ingest
from app.mail.tokens import make_message_id
from app.models.inbound import InboundRaw
from app.models.inbox import Attachment, Contact, Conversation, Message
from app.queues import get_queue
from tests.mail.conftest import make_address, message


def run(address, raw: bytes, **kw):
    item = RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw, **kw)
    return ingest(address.id, [item])[0]


@pytest.fixture
def support(app, db):
    return make_address("support@mail.pigeonhole.test")


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_new_mail_opens_a_conversation_with_contact_message_attachments_and_a_flow(support, db):
    raw = message(html="<p>Hello <b>there</b><script>alert(1)</script></p>",
                  attachments=[("invoice.pdf", "application/pdf", b"%PDF-1.4 test")])
    result = run(support, raw)
    assert result.status == "created"
    conversation = db.session.get(Conversation, result.conversation_id)
    assert conversation.token and conversation.status == "open" and conversation.subject == "Where is my order?"
    assert conversation.contact.email == "carla@example.com" and conversation.contact.name == "Carla Customer"
    msg = db.session.get(Message, result.message_row_id)
    assert msg.direction == "in" and msg.address_id == support.id and "order 17" in msg.text
    assert "<script" not in msg.html and "<b>there</b>" in msg.html
    assert msg.raw_sha256 and blob_store().get(msg.raw_sha256) == raw
    att = db.session.scalars(select(Attachment)).one()
    assert (att.filename, att.content_type, att.size) == ("invoice.pdf", "application/pdf", 13)
    assert blob_store().get(att.sha256) == b"%PDF-1.4 test"
    assert db.session.scalars(select(InboundRaw)).one().status == "created"
    jobs = get_queue("flows").jobs
    assert [(j.func_name, j.args) for j in jobs] == [("jobs.flows.run_flow", [conversation.id, msg.id])]


def test_the_same_message_twice_is_stored_once(support, db):
    raw = message()
    assert run(support, raw).status == "created"
    again = run(support, b"Received: from relay.example.com\r\n" + raw)  # redelivered through another relay
    assert again.status == "duplicate"
    assert count(db, Message) == 1 and count(db, InboundRaw) == 2


def test_without_message_id_the_content_hash_dedupes(support, db):
    raw = message(msgid=None)
    assert run(support, raw).status == "created"
    assert run(support, raw.replace(b"\r\n", b"\n")).status == "duplicate"
    assert run(support, message(msgid=None, body="something else")).status != "duplicate"


def test_dedupe_is_per_address(support, db):
    other = make_address("sales@mail.pigeonhole.test")
    raw = message()
    assert run(support, raw).status == "created"
    assert run(other, raw).status == "created"
    assert count(db, Conversation) == 2


def test_reply_by_in_reply_to(support, db):
    first = message(msgid="<first@example.com>")
    created = run(support, first)
    reply = run(support, message(subject="totally different", msgid="<second@example.com>",
                                 In_Reply_To="<first@example.com>"))
    assert reply.status == "threaded" and reply.conversation_id == created.conversation_id


def test_reply_by_references_only_even_from_another_sender(support, db):
    created = run(support, message(msgid="<a1@example.com>"))
    reply = run(support, message(subject="Fwd: note", sender="colleague@example.org", msgid="<a2@example.com>",
                                 References="<zz@nowhere> <a1@example.com>"))
    assert reply.status == "threaded" and reply.conversation_id == created.conversation_id


def test_reply_to_our_own_message_id_and_token(support, db):
    created = run(support, message())
    conversation = db.session.get(Conversation, created.conversation_id)
    ours = make_message_id(conversation.token, "mail.pigeonhole.test")
    db.session.add(Message(conversation_id=conversation.id, address_id=support.id, direction="out", message_id=ours))
    db.session.commit()
    by_id = run(support, message(subject="Thanks", In_Reply_To=ours))
    assert by_id.conversation_id == conversation.id
    # A token in a Message-ID we never stored (restored database, other row) still threads.
    token_only = make_message_id(conversation.token, "mail.pigeonhole.test")
    by_token = run(support, message(subject="Another", References=token_only))
    assert by_token.status == "threaded" and by_token.conversation_id == conversation.id


def test_subject_threading_same_customer_inside_the_window_only(support, db, app):
    created = run(support, message(subject="Order 17"))
    inside = run(support, message(subject="RE: AW: Re[2]: order 17"))
    assert inside.conversation_id == created.conversation_id and inside.status == "threaded"
    conversation = db.session.get(Conversation, created.conversation_id)
    conversation.last_message_at = datetime.now(timezone.utc) - timedelta(days=app.config["THREAD_WINDOW_DAYS"] + 1)
    db.session.commit()
    outside = run(support, message(subject="Re: Order 17"))
    assert outside.status == "created" and outside.conversation_id != created.conversation_id


def test_another_customer_with_the_same_subject_stays_apart(support, db):
    carla = run(support, message(subject="Invoice question"))
    dan = run(support, message(subject="Re: Invoice question", sender="Dan <dan@example.net>"))
    assert dan.status == "created" and dan.conversation_id != carla.conversation_id


def test_reply_to_identity(app, db):
    form = make_address("forms@mail.pigeonhole.test", use_reply_to_identity=True)
    result = run(form, message(sender="Web form <noreply@shop.example>", Reply_To="Eve <eve@example.com>"))
    conversation = db.session.get(Conversation, result.conversation_id)
    assert conversation.contact.email == "eve@example.com" and conversation.contact.name == "Eve"
    plain = make_address("plain@mail.pigeonhole.test")
    other = run(plain, message(sender="Web form <noreply@shop.example>", Reply_To="eve@example.com"))
    assert db.session.get(Conversation, other.conversation_id).contact.email == "noreply@shop.example"


def test_channel_based_sessions_one_conversation_per_to_address(app, db):
    address = make_address("acme@mail.pigeonhole.test", channel_sessions=True)
    sales = run(address, message(subject="Quote", to="sales@acme.example"))
    support = run(address, message(subject="Quote", to="support@acme.example"))
    again = run(address, message(subject="Re: Quote", to="sales@acme.example"))
    assert sales.conversation_id != support.conversation_id
    assert again.conversation_id == sales.conversation_id
    assert db.session.get(Conversation, sales.conversation_id).session_key == "sales@acme.example"


def test_a_reply_reopens_a_resolved_conversation_but_an_auto_reply_does_not(support, db):
    created = run(support, message(msgid="<r1@example.com>"))
    conversation = db.session.get(Conversation, created.conversation_id)
    conversation.status = "resolved"
    db.session.commit()
    auto = run(support, message(subject="Automatic reply: Where is my order?", In_Reply_To="<r1@example.com>",
                                Auto_Submitted="auto-replied"))
    db.session.refresh(conversation)
    assert auto.status == "threaded" and conversation.status == "resolved"
    assert db.session.get(Message, auto.message_row_id).classification == "auto_reply"
    run(support, message(subject="Re: Where is my order?", In_Reply_To="<r1@example.com>"))
    db.session.refresh(conversation)
    assert conversation.status == "open"
    flows = [j.args[1] for j in get_queue("flows").jobs]
    assert auto.message_row_id not in flows and len(flows) == 2


def test_a_bounce_marks_our_outgoing_message_instead_of_opening_a_conversation(support, db):
    created = run(support, message())
    ours = "<ph.abcdefghijklmnop.x1@mail.pigeonhole.test>"
    out = Message(conversation_id=created.conversation_id, address_id=support.id, direction="out",
                  message_id=ours, delivery_status="sent")
    db.session.add(out)
    db.session.commit()
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: support@mail.pigeonhole.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; carla@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <carla@example.com>: Recipient address rejected: User unknown\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ours}\r\nSubject: Re: Where is my order?\r\n"
        "--b--\r\n").encode()
    result = run(support, dsn)
    assert result.status == "bounce" and result.conversation_id == created.conversation_id
    db.session.refresh(out)
    assert out.delivery_status == "bounced"
    assert "carla@example.com" in out.delivery_error and "User unknown" in out.delivery_error
    assert count(db, Conversation) == 1
    assert db.session.get(Message, result.message_row_id).classification == "bounce"
    unknown = run(support, dsn.replace(ours.encode(), b"<someone-else@elsewhere>")
                  .replace(b"bounce1@", b"bounce2@"))
    assert unknown.status == "bounce" and unknown.conversation_id is None and count(db, Conversation) == 1


def test_our_own_mail_echoed_back_is_a_duplicate(support, db):
    created = run(support, message())
    ours = "<ph.abcdefghijklmnop.echo@mail.pigeonhole.test>"
    db.session.add(Message(conversation_id=created.conversation_id, address_id=support.id, direction="out",
                           message_id=ours))
    db.session.commit()
    echo = run(support, message(sender="Support <support@acme.example>", to="carla@example.com", msgid=ours))
    assert echo.status == "duplicate" and count(db, Message) == 2


def test_mail_that_cannot_be_understood_is_stored_with_its_error(support, db):
    result = run(support, b"\x00\x01 this is not mail at all \xff\xfe")
    assert result.status == "stored_with_error" and result.error
    row = db.session.scalars(select(InboundRaw)).one()
    assert row.status == "stored_with_error" and row.error and blob_store().get(row.raw_sha256)
    assert count(db, Conversation) == 0 and get_queue("flows").count == 0


def test_an_address_that_cannot_receive_is_refused(app, db):
    from app.runtime.ingest import AddressNotReceiving

    outbound_only = make_address("out@mail.pigeonhole.test", usage="outbound")
    unpublished = make_address("draft@mail.pigeonhole.test", publish=False)
    for address in (outbound_only, unpublished):
        with pytest.raises(AddressNotReceiving):
            run(address, message())
    assert count(db, Message) == 0


def test_contact_is_shared_across_conversations(support, db):
    run(support, message(subject="One"))
    run(support, message(subject="Two", sender="CARLA@Example.com"))
    assert count(db, Contact) == 1 and count(db, Conversation) == 2

"""Bounce suppression through the real paths: an agent's reply goes to a real SMTP server, a
Postfix DSN for it (tests/data/mail/dsn-postfix-*.eml) comes back through the SMTP ingress and
the ingest worker, and the recipient lands on the suppression list (hard at once, soft at the
limit within the window; a delayed report and a forged one count for nothing)."""
from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

import jobs
from app.blobs import blob_store
from app.models._types import utcnow
from app.models.inbound import InboundRaw
from app.models.inbox import Message
from app.models.suppression import Suppression
from app.queues import get_queue, redis_connection
from app.runtime import suppression
from app.runtime.ingest import RawItem, ingest
from app.runtime.ingress import make_controller
from app.runtime.outbound import deliver_message, send_reply
from tests.factories import make_sending_address, make_user
from tests.servers import SMTPServer, free_port
from tests.suppression_fixtures import dsn

SUPPORT = "support@mail.pigeonhole.test"
FIRST = (b"From: Carol Customer <carol@example.com>\r\nTo: support@mail.pigeonhole.test\r\n"
         b"Subject: Where is my parcel?\r\nMessage-ID: <first-1@example.com>\r\n"
         b"Date: Fri, 27 Nov 2026 09:00:00 +0000\r\n\r\nHello, where is my parcel?\r\n")


def _ingest(address, raw: bytes):
    return ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "smtp", raw=raw)])[0]


@pytest.fixture
def carol(app, db, tmp_path):
    """(address, conversation id, send) where send() sends one real reply to Carol and returns it."""
    address = make_sending_address(SUPPORT, forwarded_from="support@acme.test", display_name="Acme Support")
    first = _ingest(address, FIRST)
    assert first.status == "created"
    agent = make_user("agent", name="Alex")
    server = SMTPServer(tmp_path / "smtp")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"

    def send() -> Message:
        reply = send_reply(first.conversation_id, agent.id, "<p>It left our warehouse this morning.</p>")
        db.session.commit()
        assert deliver_message(reply.id)["sent"] == 1
        db.session.refresh(reply)
        assert reply.delivery_status == "sent"
        return reply

    try:
        yield address, first.conversation_id, send
    finally:
        server.stop()


def _entry(db) -> Suppression | None:
    db.session.expire_all()
    return db.session.scalar(select(Suppression).where(Suppression.email == "carol@example.com"))


def test_a_hard_bounce_through_the_smtp_ingress_suppresses_the_recipient(app, db, carol):
    address, conversation_id, send = carol
    reply = send()
    raw = dsn("dsn-postfix-5.1.1.eml", reply.message_id)
    controller = make_controller(app, "127.0.0.1", free_port())
    controller.start()
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as smtp:
            assert smtp.sendmail("<>", [SUPPORT], raw) == {}
    finally:
        controller.stop()
    jobs.use_app(app)
    SimpleWorker([get_queue("ingest")], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)

    row = db.session.scalars(select(InboundRaw).order_by(InboundRaw.id.desc()).limit(1)).one()
    assert row.envelope_from.strip("<>") == ""  # the DSN's null reverse path
    assert row.status == "bounce"
    db.session.refresh(reply)
    assert reply.delivery_status == "bounced" and "5.1.1" in reply.delivery_error
    entry = _entry(db)
    assert entry is not None and entry.suppressed
    assert (entry.kind, entry.status, entry.soft_bounce_count) == ("hard", "5.1.1", 0)
    assert "User unknown in virtual mailbox table" in entry.reason and "\n" not in entry.reason
    assert entry.source_message_id == row.message_row_id and entry.outgoing_message_id == reply.id
    assert entry.first_bounce_at == entry.last_bounce_at == entry.suppressed_at
    assert db.session.get(Message, entry.source_message_id).conversation_id == conversation_id
    assert suppression.describe(entry).startswith("Mail to carol@example.com bounced on ")
    assert suppression.describe(entry).endswith(": mailbox does not exist (5.1.1)")
    assert set(suppression.suppressed_among(["Carol@Example.com", "dave@example.com"])) == {"carol@example.com"}


def test_soft_bounces_are_counted_and_suppress_at_the_limit(app, db, carol):
    address, _conversation_id, send = carol
    assert app.config["SOFT_BOUNCE_LIMIT"] == 5 and app.config["SOFT_BOUNCE_WINDOW_DAYS"] == 7
    for n in range(1, 5):
        assert _ingest(address, dsn("dsn-postfix-4.2.2.eml", send().message_id)).status == "bounce"
        entry = _entry(db)
        assert (entry.kind, entry.status, entry.soft_bounce_count) == ("soft", "4.2.2", n)
        assert not entry.suppressed and suppression.suppression_of("carol@example.com") is None
    _ingest(address, dsn("dsn-postfix-4.2.2.eml", send().message_id))
    entry = _entry(db)
    assert entry.soft_bounce_count == 5 and entry.suppressed
    assert suppression.describe(entry).startswith("Mail to carol@example.com bounced 5 times, last on ")
    assert suppression.describe(entry).endswith(": mailbox full (4.2.2)")


def test_soft_bounces_older_than_the_window_do_not_count(app, db, carol):
    address, _conversation_id, send = carol
    old = (utcnow() - timedelta(days=8)).isoformat()
    for _ in range(2):
        _ingest(address, dsn("dsn-postfix-4.2.2.eml", send().message_id))
    entry = _entry(db)
    entry.soft_bounce_times = [old, old, old, old]  # four of them long ago
    db.session.commit()
    _ingest(address, dsn("dsn-postfix-4.2.2.eml", send().message_id))
    entry = _entry(db)
    assert entry.soft_bounce_count == 1 and not entry.suppressed


def test_a_delayed_report_is_not_a_bounce(app, db, carol):
    address, _conversation_id, send = carol
    reply = send()
    result = _ingest(address, dsn("dsn-postfix-delayed-4.2.2.eml", reply.message_id))
    assert result.status == "bounce"
    db.session.refresh(reply)
    assert reply.delivery_status == "sent"
    assert _entry(db) is None


def test_a_report_about_mail_we_never_sent_suppresses_nobody(app, db, carol):
    address, _conversation_id, send = carol
    reply = send()
    # Not one of our messages (a forged or misdirected report):
    assert _ingest(address, dsn("dsn-postfix-5.1.1.eml", "<someone-else@example.net>")).status == "bounce"
    # Ours, but naming a recipient it never went to:
    forged = dsn("dsn-postfix-5.1.1.eml", reply.message_id).replace(b"carol@example.com", b"dave@example.com")
    assert _ingest(address, forged).status == "bounce"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_a_bounce_after_a_forwarding_is_noted_on_the_address_we_wrote_to(app, db, carol):
    address, _conversation_id, send = carol
    reply = send()
    forwarded = dsn("dsn-postfix-5.1.1.eml", reply.message_id).replace(
        b"Final-Recipient: rfc822; carol@example.com", b"Final-Recipient: rfc822; carol.old@elsewhere.example")
    _ingest(address, forwarded)
    entry = _entry(db)
    assert entry is not None and entry.suppressed and entry.kind == "hard"


def test_clearing_lifts_the_suppression_and_starts_counting_again(app, db, carol):
    address, _conversation_id, send = carol
    _ingest(address, dsn("dsn-postfix-5.1.1.eml", send().message_id))
    admin = make_user("admin")
    entry = _entry(db)
    suppression.clear(entry.id, admin.id)
    db.session.commit()
    entry = _entry(db)
    assert not entry.suppressed and entry.cleared_by_id == admin.id and entry.cleared_at is not None
    assert suppression.suppression_of("carol@example.com") is None and suppression.search() == []
    with pytest.raises(LookupError):
        suppression.clear(entry.id, admin.id)  # nothing to clear any more
    _ingest(address, dsn("dsn-postfix-4.2.2.eml", send().message_id))
    assert _entry(db).soft_bounce_count == 1 and not _entry(db).suppressed
    _ingest(address, dsn("dsn-postfix-5.1.1.eml", send().message_id))
    assert _entry(db).suppressed  # a new hard bounce suppresses again


def test_one_report_with_a_hard_and_a_soft_failure_notes_each_as_its_own(app, db, carol):
    from tests.unit.test_bounce_status import MIXED

    address, conversation_id, _send = carol
    reply = send_reply(conversation_id, None, "<p>Both of you.</p>", to=["gone@example.com", "full@example.com"])
    db.session.commit()
    assert deliver_message(reply.id)["sent"] == 1
    _ingest(address, MIXED.replace(b"<ours-1@mail.pigeonhole.test>", reply.message_id.encode()))
    db.session.expire_all()
    rows = {r.email: r for r in db.session.scalars(select(Suppression))}
    assert set(rows) == {"gone@example.com", "full@example.com"}
    assert (rows["gone@example.com"].kind, rows["gone@example.com"].status, rows["gone@example.com"].suppressed) == (
        "hard", "5.1.1", True)
    assert (rows["full@example.com"].kind, rows["full@example.com"].soft_bounce_count,
            rows["full@example.com"].suppressed) == ("soft", 1, False)
    assert rows["full@example.com"].reason == "452 4.2.2 mailbox full"


def test_a_soft_bounce_after_a_hard_one_keeps_the_hard_reason(app, db, carol):
    address, _conversation_id, send = carol
    hard = send()
    _ingest(address, dsn("dsn-postfix-5.1.1.eml", hard.message_id))
    _ingest(address, dsn("dsn-postfix-4.2.2.eml", send().message_id))
    entry = _entry(db)
    assert (entry.kind, entry.status, entry.outgoing_message_id, entry.soft_bounce_count) == ("hard", "5.1.1", hard.id, 1)
    assert entry.suppressed and entry.last_bounce_at > entry.first_bounce_at
    assert suppression.describe(entry).endswith(": mailbox does not exist (5.1.1)")

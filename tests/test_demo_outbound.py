"""`flask demo seed` leaves one reply on its way, so the demo's Outbox shows sent mail."""
from __future__ import annotations

from sqlalchemy import func, select

from app.runtime.outbound import deliver_message
from app.models.inbox import Message
from tests.servers import SMTPServer


def test_demo_seed_queues_one_reply_through_the_relay(app, db, tmp_path):
    server = SMTPServer(tmp_path)
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    try:
        runner = app.test_cli_runner()
        first = runner.invoke(args=["demo", "seed"])
        assert first.exit_code == 0, first.output
        assert "address support@mail.pigeonhole.test (published, forwarded from support@demo.test)" in first.output
        assert "reply to carol@example.com queued" in first.output
        reply = db.session.scalar(select(Message).where(Message.direction == "out", Message.delivery_status == "queued"))
        assert reply.delivery_status == "queued" and reply.conversation.queue.name == "General"

        again = runner.invoke(args=["demo", "seed"])
        assert again.exit_code == 0 and "reply" not in again.output and "address" not in again.output
        assert db.session.scalar(select(func.count()).where(Message.direction == "out",
                                                            Message.delivery_status == "queued")) == 1

        assert deliver_message(reply.id)["sent"] == 1
        sent = server.messages[0]
        assert sent["rcpt_tos"] == ["carol@example.com", "support@demo.test"]
        assert b"Hello Carol Customer," in sent["data"] and b"text/vcard" in sent["data"]
    finally:
        server.stop()


def test_demo_seed_without_a_relay_says_why_and_queues_the_reply_once_there_is_one(app, db):
    from app.models.inbox import Conversation

    app.config["SMTP_RELAY_URL"] = ""
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0 and "demo reply not queued: Platform-domain addresses send through" in result.output
    assert db.session.scalar(select(func.count()).where(Message.direction == "out", Message.delivery_status == "queued")) == 0
    app.config["SMTP_RELAY_URL"] = "smtp://127.0.0.1:1?tls=none"
    again = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert "reply to carol@example.com queued" in again.output and "address" not in again.output
    assert db.session.scalar(select(func.count()).where(Conversation.subject == "Where is my parcel?")) == 2  # + workspace demo
    assert db.session.scalar(select(func.count()).where(Message.direction == "out", Message.delivery_status == "queued")) == 1

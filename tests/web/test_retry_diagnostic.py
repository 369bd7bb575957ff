"""Retry keeps a failed message's diagnostic; the demo's failed reply is a real one that Retry sends (issue 16, item 6)."""
from __future__ import annotations

from sqlalchemy import delete, select

from app.models.inbox import Message, OutgoingMime
from app.runtime.outbound import deliver_message, send_reply
from tests.factories import make_sending_address, make_sending_conversation
from tests.helpers import csrf_token
from tests.servers import SMTPServer

SERVER_WORDS = "550 5.1.1 &lt;carol@example.com&gt;: User unknown"


def _sign_in(client, email: str, password: str) -> None:
    token = csrf_token(client)
    assert client.post("/login", data={"email": email, "password": password, "csrf_token": token}).status_code == 302


def test_retry_of_a_message_whose_rendered_copy_is_gone_keeps_the_servers_words(app, db, client, login_as, tmp_path,
                                                                                 htmx_headers):
    relay = SMTPServer(tmp_path / "relay", script=["550 5.1.1 <carol@example.com>: User unknown"])
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        agent = login_as("agent")
        conversation = make_sending_conversation(make_sending_address(), email="carol@example.com", subject="Parcel")
        conversation.assignee_id = agent.id
        message = send_reply(conversation.id, agent.id, "<p>It ships today.</p>")
        db.session.commit()
        deliver_message(message.id)
        db.session.execute(delete(OutgoingMime).where(OutgoingMime.message_id == message.id))
        db.session.commit()

        token = csrf_token(client, f"/inbox/c/{conversation.id}")
        refused = client.post(f"/inbox/m/{message.id}/retry", headers={**htmx_headers, "X-CSRFToken": token})
        body = refused.get_data(as_text=True)
        assert refused.status_code == 422 and "its rendered copy is missing. Write it again." in body
        assert SERVER_WORDS in body and "Failed" in body
        db.session.expire_all()
        kept = db.session.get(Message, message.id)
        assert kept.delivery_status == "failed" and kept.smtp_code == 550
        assert kept.delivery_error.startswith("550 5.1.1 <carol@example.com>: User unknown")
        assert SERVER_WORDS in client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    finally:
        relay.stop()


def test_the_demos_failed_reply_shows_the_servers_words_and_retry_sends_it(app, db, client, tmp_path, htmx_headers):
    relay = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        result = app.test_cli_runner().invoke(args=["demo", "seed"])
        assert result.exit_code == 0, result.output
        failed = db.session.scalar(select(Message).where(Message.delivery_status == "failed"))
        assert failed is not None and failed.smtp_code == 550
        _sign_in(client, "agent@demo.test", app.config["DEMO_PASSWORD"])
        page = client.get(f"/inbox/c/{failed.conversation_id}").get_data(as_text=True)
        assert "Recipient address rejected: mailbox full" in page

        token = csrf_token(client, f"/inbox/c/{failed.conversation_id}")
        retried = client.post(f"/inbox/m/{failed.id}/retry", headers={**htmx_headers, "X-CSRFToken": token})
        assert retried.status_code == 200 and "Queued" in retried.get_data(as_text=True)
        assert deliver_message(failed.id)["sent"] >= 1
        db.session.expire_all()
        sent = db.session.get(Message, failed.id)
        assert sent.delivery_status == "sent", sent.delivery_error
        data = [m["data"] for m in relay.messages if "dan@example.org" in m["rcpt_tos"]]
        assert len(data) == 1 and b"Your refund is on its way." in data[0]
    finally:
        relay.stop()

"""Delivery status of a sent message (the status line of its tile) and Retry by hand, against a real relay."""
from __future__ import annotations

import pytest

from app.runtime.outbound import deliver_message, send_job_id, send_reply
from app.models.inbox import Message
from app.queues import get_queue
from tests.factories import make_sending_address, make_sending_conversation
from tests.helpers import csrf_token
from tests.servers import SMTPServer


@pytest.fixture
def relay(app, tmp_path):
    server = SMTPServer(tmp_path / "relay", script=["550 5.1.1 <carol@example.com>: User unknown"])
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    yield server
    server.stop()


def _failed_message(db, assignee) -> Message:
    address = make_sending_address()
    conversation = make_sending_conversation(address, email="carol@example.com", subject="Where is my parcel?")
    conversation.assignee_id = assignee.id
    message = send_reply(conversation.id, assignee.id, "<p>It ships today.</p>")
    db.session.commit()
    deliver_message(message.id)
    return message


def test_failed_tile_status_retry_and_sent_with_the_servers_words(app, db, client, login_as, relay, htmx_headers):
    agent = login_as("agent")
    message = _failed_message(db, agent)
    page = client.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)
    assert f'id="delivery-{message.id}"' in page and "550 5.1.1 &lt;carol@example.com&gt;: User unknown" in page

    url = f"/inbox/m/{message.id}/status"
    frag = client.get(url, headers=htmx_headers)
    body = frag.get_data(as_text=True)
    assert frag.status_code == 200 and "<html" not in body and f'id="delivery-{message.id}"' in body
    assert "Failed" in body and ">Retry</button>" in body and "every 5s" not in body  # nothing pending: no polling
    plain = client.get(url)  # without HTMX: the conversation, at the message
    assert plain.status_code == 302 and plain.headers["Location"].endswith(
        f"/inbox/c/{message.conversation_id}#message-{message.id}")

    token = csrf_token(client, f"/inbox/c/{message.conversation_id}")
    retried = client.post(f"/inbox/m/{message.id}/retry", headers={**htmx_headers, "X-CSRFToken": token})
    text = retried.get_data(as_text=True)
    assert retried.status_code == 200 and "Queued" in text and "every 5s" in text
    db.session.expire_all()
    assert db.session.get(Message, message.id).delivery_status == "queued"
    assert get_queue("send").job_ids == [send_job_id(message.id)]

    again = client.post(f"/inbox/m/{message.id}/retry", headers={**htmx_headers, "X-CSRFToken": token})
    text = again.get_data(as_text=True)
    assert again.status_code == 422 and "Only a message that failed can be sent again." in text
    assert "<html" not in text

    deliver_message(message.id)
    sent = client.get(url, headers=htmx_headers).get_data(as_text=True)
    assert "Sent" in sent and "The server said: 250" in sent and len(relay.messages) == 1
    assert "every 5s" not in sent and ">Retry<" not in sent


def test_retry_without_htmx_redirects_and_a_disabled_address_says_why(app, db, client, login_as, relay):
    from app.publish.services import publish_addresses

    agent = login_as("agent")
    message = _failed_message(db, agent)
    conversation_url = f"/inbox/c/{message.conversation_id}"
    token = csrf_token(client, conversation_url)
    address = message.conversation.address
    address.enabled = False
    publish_addresses([address.id], None, "off")
    db.session.commit()
    refused = client.post(f"/inbox/m/{message.id}/retry", data={"csrf_token": token})
    assert refused.status_code == 303 and refused.headers["Location"].endswith(f"#message-{message.id}")
    assert "is disabled, so it cannot send." in client.get(conversation_url).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, message.id).delivery_status == "failed"

    address.enabled = True
    publish_addresses([address.id], None, "on")
    db.session.commit()
    done = client.post(f"/inbox/m/{message.id}/retry", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"#message-{message.id}")
    assert "The message is queued to be sent again." in client.get(conversation_url).get_data(as_text=True)


def test_other_agents_and_inbound_messages_get_404(app, db, client, login_as, relay):
    from tests.factories import make_user

    owner = make_user("agent")
    message = _failed_message(db, owner)
    inbound_id = message.conversation.messages[0].id
    login_as("agent")
    assert client.get(f"/inbox/m/{message.id}/status").status_code == 404
    token = csrf_token(client, "/inbox/")
    assert client.post(f"/inbox/m/{message.id}/retry", data={"csrf_token": token}).status_code == 404
    client.post("/logout", data={"csrf_token": token})
    login_as("supervisor")  # sees every conversation, and still no delivery status for a customer's mail
    token = csrf_token(client, "/inbox/")
    assert client.get(f"/inbox/m/{message.id}/status", headers={"HX-Request": "true"}).status_code == 200
    assert client.get(f"/inbox/m/{inbound_id}/status").status_code == 404
    assert client.post(f"/inbox/m/{inbound_id}/retry", data={"csrf_token": token}).status_code == 404

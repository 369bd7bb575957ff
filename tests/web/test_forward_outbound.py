"""A Forward to a third party, sent through the routes and the real outbound path to aiosmtpd (issue 16, items 2
and 3): the template's greeting names the forward's recipient (not the customer), and the forwarded inline images
travel along as parts with their Content-IDs (multipart/related)."""
from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import select

from app.models.inbox import Draft, Message
from app.runtime.outbound import deliver_message
from tests.factories import make_conversation, make_message, make_queue, make_sending_address
from tests.helpers import csrf_token
from tests.servers import SMTPServer

LOGO = b"\x89PNG\r\n\x1a\n the customer's logo"


@pytest.fixture
def relay(app, tmp_path):
    server = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    yield server
    server.stop()


@pytest.fixture
def forwarding(client, db, login_as, relay):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    address = make_sending_address(display_name="Acme Support", template_enabled=True,
                                   header_html="<p>Hello {{ customer_name }},</p>")
    conversation = make_conversation(queue=queue, address=address, contact_email="jane@example.com",
                                     contact_name="Jane Doe", subject="Damaged parcel")
    message = make_message(conversation, text="The box was crushed, see the photo.",
                           html='<p>The box was crushed.</p><p><img src="cid:logo.1@mail.example" alt="logo"></p>',
                           attachments=[("logo.png", "image/png", LOGO, "<logo.1@mail.example>")])
    token = csrf_token(client, f"/inbox/c/{conversation.id}")
    return {"conversation": conversation, "message": message, "address": address,
            "h": {"HX-Request": "true", "X-CSRFToken": token}}


def _forward(client, db, relay, forwarding, to: str) -> email.message.EmailMessage:
    conversation, h = forwarding["conversation"], forwarding["h"]
    opened = client.post(f"/inbox/c/{conversation.id}/compose", headers=h,
                         data={"kind": "forward", "message": forwarding["message"].id})
    assert opened.status_code == 200
    draft = db.session.scalar(select(Draft))
    sent = client.post(f"/inbox/drafts/{draft.id}/send", headers=h,
                       data={"to": to, "subject": draft.subject, "from_address_id": forwarding["address"].id,
                             "body": "<p>Please check this one.</p>" + draft.body})
    assert sent.status_code == 200, sent.get_data(as_text=True)
    out = db.session.scalar(select(Message).where(Message.direction == "out"))
    assert deliver_message(out.id)["sent"] == 1
    return email.message_from_bytes(relay.messages[-1]["data"], policy=policy.default)


def test_a_forward_greets_its_recipient_not_the_customer(client, db, relay, forwarding):
    mail = _forward(client, db, relay, forwarding, "Walt Warehouse <warehouse@logistics.example>")
    html = mail.get_body(("html",)).get_content()
    assert "Hello Walt Warehouse," in html and "Jane Doe" not in html.split("Forwarded message")[0]


def test_a_forward_to_an_unknown_name_collapses_the_greeting(client, db, relay, forwarding):
    mail = _forward(client, db, relay, forwarding, "warehouse@logistics.example")
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert "<p>Hello,</p>" in html and "Jane" not in html.split("Forwarded message")[0]
    assert text.startswith("Hello,\r\n")


def test_a_forward_carries_the_inline_images_its_html_shows(client, db, relay, forwarding):
    mail = _forward(client, db, relay, forwarding, "warehouse@logistics.example")
    related = next(part for part in mail.walk() if part.get_content_type() == "multipart/related")
    html = related.get_body(("html",)).get_content()
    assert 'src="cid:logo.1@mail.example"' in html
    image = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert len(image) == 1 and image[0]["Content-ID"] == "<logo.1@mail.example>"
    assert image[0].get_content() == LOGO
    # …and the sent tile in the conversation shows it from the stored copy, not as a broken cid: image.
    out = db.session.scalar(select(Message).where(Message.direction == "out"))
    assert [(a.filename, a.inline) for a in out.attachments] == [("logo.png", True)]


def test_an_inline_image_deleted_from_the_forward_is_left_out(client, db, relay, forwarding):
    conversation, h = forwarding["conversation"], forwarding["h"]
    client.post(f"/inbox/c/{conversation.id}/compose", headers=h,
                data={"kind": "forward", "message": forwarding["message"].id})
    draft = db.session.scalar(select(Draft))
    client.post(f"/inbox/drafts/{draft.id}/send", headers=h,
                data={"to": "warehouse@logistics.example", "subject": draft.subject, "body": "<p>Just text.</p>",
                      "from_address_id": forwarding["address"].id})
    out = db.session.scalar(select(Message).where(Message.direction == "out"))
    deliver_message(out.id)
    mail = email.message_from_bytes(relay.messages[-1]["data"], policy=policy.default)
    assert not [p for p in mail.walk() if p.get_content_type() in ("multipart/related", "image/png")]

"""The message tile says where the sender was taken from when the mail had no usable From."""
from __future__ import annotations

from app.extensions import db
from tests.factories import make_address, make_conversation, make_message, make_queue


def test_the_tile_says_sender_taken_from_reply_to(client, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    conv = make_conversation(queue=queue, address=address, contact_email="dana@example.org")
    fallback = make_message(conv, text="No From in this one", from_addr="Dana Doe <dana@example.org>")
    fallback.sender_source = "reply-to"
    make_message(conv, text="A normal one")
    db.session.commit()
    html = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
    assert html.count('class="muted small sender-note">Sender taken from Reply-To</span>') == 1
    assert "Sender taken from" not in html.split(f'id="message-{fallback.id}"')[1].split("</article>", 1)[1]

"""The composer says which From a reply will use and why, when it is not the address the mail came to
(issue 16, item 9: an inbound-only address silently replied from another address)."""
from __future__ import annotations

from sqlalchemy import select

from app.inbox.addresses import link_queue_address
from app.models.inbox import Draft
from tests.factories import make_address, make_conversation, make_message, make_queue
from tests.helpers import csrf_token


def _reply(client, db, conversation):
    token = csrf_token(client, f"/inbox/c/{conversation.id}")
    page = client.post(f"/inbox/c/{conversation.id}/compose", data={"kind": "reply"},
                       headers={"HX-Request": "true", "X-CSRFToken": token})
    assert page.status_code == 200
    return db.session.scalar(select(Draft).order_by(Draft.id.desc())), page.get_data(as_text=True)


def test_a_reply_to_an_inbound_only_address_names_the_from_it_uses_and_why(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    help_ = make_address("help@mail.pigeonhole.test", usage="inbound", queues=[queue])
    support = make_address("support@mail.pigeonhole.test", display_name="Demo Support", queues=[queue])
    link_queue_address(queue, support.id)
    db.session.commit()
    conversation = make_conversation(queue=queue, address=help_, contact_email="carol@example.com")
    make_message(conversation)

    draft, html = _reply(client, db, conversation)
    assert draft.from_address_id == support.id
    assert ("Replies go out from Demo Support &lt;support@mail.pigeonhole.test&gt; because "
            "help@mail.pigeonhole.test only receives.") in html
    assert f'aria-describedby="from-notice-{draft.id}"' in html
    full = client.get(f"/inbox/c/{conversation.id}?draft={draft.id}").get_data(as_text=True)
    assert "because help@mail.pigeonhole.test only receives." in full  # the full page says it too


def test_no_notice_when_the_reply_goes_out_from_the_address_it_came_to(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    both = make_address("help@mail.pigeonhole.test", queues=[queue])
    conversation = make_conversation(queue=queue, address=both, contact_email="carol@example.com")
    make_message(conversation)
    draft, html = _reply(client, db, conversation)
    assert draft.from_address_id == both.id and "Replies go out from" not in html and "from-notice" not in html


def test_no_address_can_send_says_why(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    help_ = make_address("help@mail.pigeonhole.test", usage="inbound", queues=[queue])
    conversation = make_conversation(queue=queue, address=help_, contact_email="carol@example.com")
    make_message(conversation)
    draft, html = _reply(client, db, conversation)
    assert draft.from_address_id is None
    assert "No reply can go out from help@mail.pigeonhole.test: it only receives." in html

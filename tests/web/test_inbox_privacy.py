"""What an agent can learn about other queues through the workspace: recipient suggestions
and Transfer, through the real routes."""
from __future__ import annotations

import pytest

from tests.factories import make_address, make_conversation, make_queue, make_user
from tests.helpers import csrf_token


def _two_queues(client, db, agent):
    """`agent` (signed in) works Support; Billing is another queue with its own customer and agent."""
    agent = db.session.merge(agent)
    colleague = make_user("agent", name="Casey Colleague", email="casey@example.test")
    stranger = make_user("agent", name="Cassidy Billing", email="cassidy@example.test")
    support = make_queue("Support", members=[agent, colleague])
    billing = make_queue("Billing", members=[stranger])
    address = make_address("help@mail.pigeonhole.test", queues=[support, billing])
    mine = make_conversation(queue=support, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer")
    other = make_conversation(queue=billing, address=address, contact_email="cathy@secret.example",
                              contact_name="Cathy Secret")
    token = csrf_token(client, "/inbox/")
    return {"agent": agent, "support": support, "billing": billing, "mine": mine, "other": other,
            "h": {"HX-Request": "true", "X-CSRFToken": token}}


@pytest.fixture
def two_queues(client, db, login_as):
    return _two_queues(client, db, login_as("agent", name="Alex Agent", email="alex@example.test"))


def _suggest(client, h, typed: str) -> str:
    response = client.get(f"/inbox/contacts/suggest?field=to&to={typed}", headers=h)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_suggestions_hold_only_customers_of_conversations_the_agent_may_open_and_colleagues(client, two_queues, db):
    h = two_queues["h"]
    found = _suggest(client, h, "ca")
    assert "carol@example.com" in found and "casey@example.test" in found
    assert "cathy@secret.example" not in found and "Cathy Secret" not in found
    assert "cassidy@example.test" not in found  # an agent of a queue Alex does not work
    assert "cathy" not in _suggest(client, h, "cathy").lower()
    assert "cathy" not in _suggest(client, h, "secret").lower()  # by address and by name

    # Assigned to Alex, Billing's customer becomes someone Alex writes to.
    two_queues["other"].assignee_id = two_queues["agent"].id
    db.session.commit()
    assert "cathy@secret.example" in _suggest(client, h, "cathy")


def test_a_supervisor_is_offered_every_customer(client, db, login_as):
    data = _two_queues(client, db, login_as("supervisor", email="sam@example.test"))
    found = _suggest(client, data["h"], "ca")
    assert "carol@example.com" in found and "cathy@secret.example" in found and "cassidy@example.test" in found


def _transfer(client, h, conversation_id: int, queue_id: int):
    return client.post(f"/inbox/c/{conversation_id}/transfer", data={"queue": str(queue_id)}, headers=h)


def _trail(db, conversation_id: int) -> list:
    """The conversation's trail lines of kind transfer (`app.runtime.trail`)."""
    from app.models.organize import ConversationEvent

    return list(db.session.scalars(db.select(ConversationEvent).where(
        ConversationEvent.conversation_id == conversation_id, ConversationEvent.kind == "transfer")
        .order_by(ConversationEvent.id)))


def test_with_transfer_to_any_queue_off_only_member_queues_are_offered_and_others_refused(client, two_queues, db, app):
    app.config["TRANSFER_TO_ANY_QUEUE"] = False
    h, mine = two_queues["h"], two_queues["mine"]
    elsewhere = make_queue("Elsewhere")
    page = client.get(f"/inbox/c/{mine.id}").get_data(as_text=True)
    assert ">Support</option>" in page and ">Billing</option>" not in page and ">Elsewhere</option>" not in page

    refused = _transfer(client, h, mine.id, two_queues["billing"].id)
    assert refused.status_code == 403
    assert "You can transfer only to queues you are a member of; Billing is not one of them." in refused.get_data(as_text=True)
    plain = client.post(f"/inbox/c/{mine.id}/transfer", data={"queue": str(elsewhere.id), "csrf_token": h["X-CSRFToken"]})
    assert plain.status_code == 403 and "Elsewhere is not one of them" in plain.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(mine), mine.id).queue_id == two_queues["support"].id
    assert _trail(db, mine.id) == []

    # A queue the agent works is still fine, and is recorded.
    extra = make_queue("Returns", members=[two_queues["agent"]])
    assert _transfer(client, h, mine.id, extra.id).status_code == 200
    [note] = _trail(db, mine.id)
    assert note.text == "Alex Agent transferred to Returns from Support"
    assert note.actor_id == two_queues["agent"].id and note.created_at is not None


def test_a_supervisor_may_transfer_anywhere_even_with_the_setting_off(client, db, login_as, app):
    app.config["TRANSFER_TO_ANY_QUEUE"] = False
    data = _two_queues(client, db, login_as("supervisor", name="Sam Supervisor", email="sam@example.test"))
    page = client.get(f"/inbox/c/{data['mine'].id}").get_data(as_text=True)
    assert ">Billing</option>" in page
    assert _transfer(client, data["h"], data["mine"].id, data["billing"].id).status_code == 200
    page = client.get(f"/inbox/c/{data['mine'].id}").get_data(as_text=True)
    assert "Sam Supervisor transferred to Billing from Support" in page


def test_by_default_any_queue_is_offered_and_every_transfer_is_in_the_trail(client, two_queues, db, app):
    assert app.config["TRANSFER_TO_ANY_QUEUE"] is True
    h, mine = two_queues["h"], two_queues["mine"]
    page = client.get(f"/inbox/c/{mine.id}").get_data(as_text=True)
    assert ">Billing</option>" in page
    moved = _transfer(client, h, mine.id, two_queues["billing"].id)
    assert moved.status_code == 204 and moved.headers["HX-Redirect"] == "/inbox/"  # no longer theirs to see
    [note] = _trail(db, mine.id)
    assert note.text == "Alex Agent transferred to Billing from Support"
    assert note.actor_id == two_queues["agent"].id
    # Billing's agent sees who handed it over, in the thread.
    db.session.expire_all()
    assert db.session.get(type(mine), mine.id).queue_id == two_queues["billing"].id

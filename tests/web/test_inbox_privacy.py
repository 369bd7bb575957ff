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

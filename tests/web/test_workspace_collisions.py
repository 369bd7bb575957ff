"""Two agents on one conversation (issue 16, item 4): one's own Assign / Status / Transfer updates the header
badge and the arrival card at once (out-of-band swaps), and overwriting a colleague's assignment or recent status
asks first and names who — a confirm step of the routes (`confirm=1`), not only of the page."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.models.inbox import Conversation
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token


def _signed_in(app, user):
    client = app.test_client()
    token = csrf_token(client)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


@pytest.fixture
def pair(app, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    support = make_queue("Support", members=[alex, bea])
    returns = make_queue("Returns", members=[alex, bea])
    address = make_address("help@mail.pigeonhole.test", queues=[support])
    conversation = make_conversation(queue=support, address=address, contact_email="carol@example.com",
                                     contact_name="Carol Customer")
    make_message(conversation)
    clients = {}
    for name, user in (("alex", alex), ("bea", bea)):
        client = _signed_in(app, user)
        token = csrf_token(client, f"/inbox/c/{conversation.id}")
        clients[name] = (client, {"HX-Request": "true", "X-CSRFToken": token}, token)
    return {"alex": alex, "bea": bea, "conversation": conversation, "returns": returns, "clients": clients}


def _post(pair, who, action, **data):
    client, headers, _ = pair["clients"][who]
    return client.post(f"/inbox/c/{pair['conversation'].id}/{action}", data=data, headers=headers)


def _oob(html: str, element_id: str) -> str:
    match = re.search(rf'<[a-z]+[^>]*id="{element_id}"[^>]*hx-swap-oob="true"[^>]*>(.*?)</(?:span|div)>', html, re.S)
    assert match, f"no out-of-band #{element_id} in the answer"
    return match.group(1)


def test_own_status_assign_and_transfer_update_the_badge_and_the_arrival_card(pair):
    status = _post(pair, "alex", "status", status="pending").get_data(as_text=True)
    assert _oob(status, "status-badge") == "pending"
    assigned = _post(pair, "alex", "assign", assignee="me").get_data(as_text=True)
    assert "Alex Agent" in _oob(assigned, "arrival-assignee")
    moved = _post(pair, "alex", "transfer", queue=pair["returns"].id).get_data(as_text=True)
    assert "Returns" in _oob(moved, "arrival-queue")
    page = pair["clients"]["alex"][0].get(f"/inbox/c/{pair['conversation'].id}").get_data(as_text=True)
    assert 'id="status-badge"' in page and "hx-swap-oob" not in page.split('id="status-badge"')[0][-200:]


def test_taking_a_colleagues_conversation_asks_first_and_names_who(db, pair):
    took = _post(pair, "bea", "assign", assignee="me")
    assert took.status_code == 200
    asked = _post(pair, "alex", "assign", assignee="me")
    body = asked.get_data(as_text=True)
    assert asked.status_code == 422 and re.search(r"Bea Agent took this conversation \d+ s ago\.", body)
    assert 'name="confirm" value="1"' in body and ">Take it anyway</button>" in body
    db.session.expire_all()
    assert db.session.get(Conversation, pair["conversation"].id).assignee_id == pair["bea"].id  # nothing taken yet

    taken = _post(pair, "alex", "assign", assignee="me", confirm="1")
    assert taken.status_code == 200 and "Alex Agent" in _oob(taken.get_data(as_text=True), "arrival-assignee")
    db.session.expire_all()
    assert db.session.get(Conversation, pair["conversation"].id).assignee_id == pair["alex"].id


def test_a_colleagues_recent_status_asks_first_an_older_one_does_not(db, pair):
    assert _post(pair, "bea", "status", status="pending").status_code == 200
    asked = _post(pair, "alex", "status", status="resolved")
    body = asked.get_data(as_text=True)
    assert asked.status_code == 422 and re.search(r"Bea Agent set the status to pending \d+ s ago\.", body)
    assert ">Change it anyway</button>" in body and 'name="status" value="resolved"' in body
    db.session.expire_all()
    conversation = db.session.get(Conversation, pair["conversation"].id)
    assert conversation.status == "pending"

    conversation.status_at -= timedelta(seconds=61)
    db.session.commit()
    later = _post(pair, "alex", "status", status="resolved")
    assert later.status_code == 200 and _oob(later.get_data(as_text=True), "status-badge") == "resolved"
    # One's own recent change asks nothing.
    assert _post(pair, "alex", "status", status="open").status_code == 200


def test_without_htmx_the_page_asks_and_the_confirmed_form_changes_it(db, pair):
    _post(pair, "bea", "assign", assignee="me")
    client, _, token = pair["clients"]["alex"]
    url = f"/inbox/c/{pair['conversation'].id}/assign"
    asked = client.post(url, data={"assignee": "me", "csrf_token": token})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 422 and "<html" in page and "Bea Agent took this conversation" in page
    assert client.post(url, data={"assignee": "me", "confirm": "1", "csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Conversation, pair["conversation"].id).assignee_id == pair["alex"].id

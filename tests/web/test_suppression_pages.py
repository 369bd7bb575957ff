"""Suppressed recipients in the composer (warning on adding, a confirm step on Send) and Ops › Suppressions
(list, search, Clear), through the real routes; the suppression comes from a real DSN through ingest."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.models.inbox import Draft, Message
from app.models.suppression import Suppression
from tests.factories import make_address, make_conversation, make_message, make_queue
from tests.helpers import csrf_token
from tests.suppression_fixtures import bounce

NOW = datetime.now(timezone.utc)
WARNING = "Mail to carol@example.com bounced on {:%d %b %Y}: mailbox does not exist (5.1.1)."


@pytest.fixture
def ws(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    conv = make_conversation(queue=queue, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer", when=NOW - timedelta(hours=1))
    make_message(conv, text="Hello there", when=NOW - timedelta(minutes=50))
    bounce(conv, "carol@example.com")
    token = csrf_token(client, "/inbox/")
    # The warning names the day the bounce came in (ingest stamps it now, not at NOW, so a run over midnight holds).
    bounced_at = db.session.scalar(select(Suppression)).last_bounce_at
    return {"conv": conv, "address": address, "h": {"HX-Request": "true", "X-CSRFToken": token},
            "warning": WARNING.format(bounced_at)}


def _draft(client, ws, db):
    composer = client.post(f"/inbox/c/{ws['conv'].id}/compose", data={"kind": "reply"}, headers=ws["h"])
    return db.session.scalar(select(Draft)), composer.get_data(as_text=True)


def test_the_composer_warns_about_a_suppressed_recipient_when_it_is_added(client, ws, db):
    h = ws["h"]
    check = client.post("/inbox/recipients/check", headers=h,
                        data={"field": "cc", "cc": "Dave <dave@example.com>, Carol <Carol@Example.com>"})
    text = check.get_data(as_text=True)
    assert check.status_code == 200 and 'class="field-warning"' in text
    assert ws["warning"] in text and "dave@example.com" not in text
    clean = client.post("/inbox/recipients/check", headers=h, data={"field": "to", "to": "dave@example.com"})
    assert clean.status_code == 200 and clean.get_data(as_text=True).strip() == ""
    # A Reply to her has her in To already: the composer says so at once.
    draft, composer = _draft(client, ws, db)
    assert ws["warning"] in composer
    page = client.get(f"/inbox/c/{ws['conv'].id}?draft={draft.id}").get_data(as_text=True)  # the full page too
    assert ws["warning"] in page


def test_send_asks_first_then_sends_anyway_and_clears_nothing(client, ws, db):
    h = ws["h"]
    draft, _ = _draft(client, ws, db)
    data = {"to": "carol@example.com", "subject": "Re: parcel", "body": "<p>Done</p>"}
    asked = client.post(f"/inbox/drafts/{draft.id}/send", data=data, headers=h)
    text = asked.get_data(as_text=True)
    assert asked.status_code == 422 and "Mail to this address bounced before" in text
    assert ws["warning"][:-1] in text and "Send anyway" in text and '"confirm_suppressed": "1"' in text
    assert db.session.get(Draft, draft.id) is not None
    assert db.session.scalar(select(Message).where(Message.direction == "out", Message.author_id.is_not(None))) is None

    sent = client.post(f"/inbox/drafts/{draft.id}/send", data={**data, "confirm_suppressed": "1"}, headers=h)
    assert sent.status_code == 200 and "tile-out" in sent.get_data(as_text=True)
    out = db.session.scalar(select(Message).where(Message.direction == "out", Message.author_id.is_not(None)))
    assert out.to_addrs == "carol@example.com" and out.delivery_status == "queued"
    db.session.expire_all()
    assert db.session.scalar(select(Suppression)).suppressed  # sending anyway clears nothing


def test_the_confirm_step_keeps_an_earlier_newer_message_confirmation(client, ws, db):
    h = ws["h"]
    draft, _ = _draft(client, ws, db)
    make_message(ws["conv"], text="Oh and another thing")
    data = {"to": "carol@example.com", "subject": "Re: parcel", "body": "<p>Done</p>"}
    newer = client.post(f"/inbox/drafts/{draft.id}/send", data=data, headers=h)
    assert newer.status_code == 422 and "A newer message is in this conversation" in newer.get_data(as_text=True)
    asked = client.post(f"/inbox/drafts/{draft.id}/send", data={**data, "confirm_newer": "1"}, headers=h)
    assert '{"confirm_suppressed": "1", "confirm_newer": "1"}' in asked.get_data(as_text=True)
    sent = client.post(f"/inbox/drafts/{draft.id}/send", headers=h,
                       data={**data, "confirm_newer": "1", "confirm_suppressed": "1"})
    assert sent.status_code == 200


def test_ops_lists_searches_and_clears_suppressions(client, db, login_as):
    admin = login_as("admin")
    queue = make_queue("Support")
    conv = make_conversation(queue=queue, address=make_address("help@mail.pigeonhole.test", queues=[queue]),
                             contact_email="carol@example.com")
    bounce(conv, "carol@example.com")
    bounce(conv, "dave@example.com")
    for _ in range(4):
        bounce(conv, "erin@example.com", "dsn-postfix-4.2.2.eml")  # counted, not yet suppressed
    newest = db.session.scalar(select(Suppression).where(Suppression.email == "dave@example.com"))
    newest.last_bounce_at = datetime.now(timezone.utc) + timedelta(minutes=1)
    db.session.commit()

    page = client.get("/ops/suppressions/").get_data(as_text=True)
    assert "2 suppressed addresses, newest bounce first" in page
    assert page.index("dave@example.com") < page.index("carol@example.com") and "erin@example.com" not in page
    assert "mailbox does not exist (5.1.1)" in page and "User unknown in virtual mailbox table" in page
    assert '<label for="q">Search</label>' in page and "Suppressions" in client.get("/ops/").get_data(as_text=True)
    found = client.get("/ops/suppressions/?q=CAROL", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "carol@example.com" in found and "dave@example.com" not in found and "<html" not in found
    assert "No suppressed address matches" in client.get("/ops/suppressions/?q=nobody").get_data(as_text=True)
    assert client.get("/ops/suppressions/?q=" + "x" * 201).status_code == 422

    token = csrf_token(client, "/ops/suppressions/")
    carol = db.session.scalar(select(Suppression).where(Suppression.email == "carol@example.com"))
    cleared = client.post(f"/ops/suppressions/{carol.id}/clear", data={"csrf_token": token})
    assert cleared.status_code == 303
    db.session.expire_all()
    carol = db.session.get(Suppression, carol.id)
    assert not carol.suppressed and carol.cleared_by_id == admin.id
    after = client.get("/ops/suppressions/").get_data(as_text=True)
    assert "carol@example.com is no longer suppressed" in after and "1 suppressed address," in after
    assert client.post(f"/ops/suppressions/{carol.id}/clear", data={"csrf_token": token}).status_code == 404
    assert client.post("/ops/suppressions/987654/clear", data={"csrf_token": token}).status_code == 404


def test_only_admins_see_or_clear_suppressions(client, db, login_as):
    queue = make_queue("Support")
    conv = make_conversation(queue=queue, address=make_address("help@mail.pigeonhole.test", queues=[queue]),
                             contact_email="carol@example.com")
    bounce(conv, "carol@example.com")
    entry = db.session.scalar(select(Suppression))
    login_as("agent")
    assert client.get("/ops/suppressions/").status_code in (403, 404)
    token = csrf_token(client, "/inbox/")
    assert client.post(f"/ops/suppressions/{entry.id}/clear", data={"csrf_token": token}).status_code in (403, 404)
    db.session.expire_all()
    assert db.session.get(Suppression, entry.id).suppressed

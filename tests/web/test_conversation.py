"""The conversation page, its actions, the composer and drafts through the test client."""
from __future__ import annotations

import re

import pytest

from app.models.inbox import Draft, Message
from tests.factories import make_address, make_conversation, make_message, make_queue
from tests.helpers import CountQueries, csrf_token


@pytest.fixture
def setup(client, db, login_as):
    agent = login_as("agent", name="Alex Agent")
    agent = db.session.merge(agent)
    queue = make_queue("Billing", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue], forwarded_from="help@acme.test")
    conv = make_conversation(queue=queue, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer")
    first = make_message(conv, text="First question", cc_addrs="dave@example.com")
    second = make_message(conv, direction="out", text="First answer", author=agent, delivery_status="sent")
    third = make_message(conv, text="Thanks!\n\nOn Monday, Alex wrote:\n> First answer", html=None,
                         cc_addrs="dave@example.com, help@acme.test")
    token = csrf_token(client, "/inbox/")
    return {"agent": agent, "queue": queue, "address": address, "conv": conv, "messages": [first, second, third],
            "token": token}


def test_conversation_full_page_has_tiles_frames_and_actions(client, setup):
    conv = setup["conv"]
    r = client.get(f"/inbox/c/{conv.id}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert html.count('class="tile tile-') == 3
    # Never scripts in a frame; same origin (without scripts) lets the page size a frame to its content.
    assert 'sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"' in html and "srcdoc=" in html
    assert "allow-scripts" not in html
    assert html.count("<details") >= 3 and html.count("<details class=\"tile-details\" open>") == 1
    assert "Assign to me" in html and "Reply All" in html and "Forward" in html
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" in csp and "style-src-attr 'unsafe-inline'" in csp
    assert "script-src 'self';" in csp  # scripts stay strict
    assert 'aria-expanded="false"' in html and ">Show quoted text</button>" in html  # the third message's quote is folded


def test_conversation_fragment_and_404_for_other_queues(client, db, setup, htmx_headers):
    conv = setup["conv"]
    frag = client.get(f"/inbox/c/{conv.id}", headers=htmx_headers).get_data(as_text=True)
    assert "<html" not in frag and "tile-in" in frag
    other = make_conversation(queue=make_queue("Secret"), subject="Hidden")
    assert client.get(f"/inbox/c/{other.id}").status_code == 404


def test_compose_reply_all_save_and_send(client, db, setup, htmx_headers):
    conv, token = setup["conv"], setup["token"]
    headers = {**htmx_headers, "X-CSRFToken": token}
    r = client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "reply_all"}, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    html = r.get_data(as_text=True)
    draft = db.session.scalar(db.select(Draft))
    assert draft.to_addrs == "carol@example.com"
    assert draft.cc_addrs == "dave@example.com"  # our own help@acme.test removed
    assert 'value="Re: Where is my parcel?"' in html
    r = client.post(f"/inbox/drafts/{draft.id}", headers=headers,
                    data={"to": draft.to_addrs, "cc": "dave@example.com", "bcc": "boss@example.com",
                          "subject": "Re: Where is my parcel?", "body": "<p>It is <b>on its way</b>.</p>"})
    assert r.status_code == 200 and "Saved" in r.get_data(as_text=True)
    r = client.post(f"/inbox/drafts/{draft.id}/send", headers=headers,
                    data={"to": "carol@example.com", "cc": "dave@example.com", "bcc": "boss@example.com",
                          "subject": "Re: Where is my parcel?", "body": "<p>It is <b>on its way</b>.</p>"})
    assert r.status_code == 200, r.get_data(as_text=True)
    db.session.expire_all()
    sent = db.session.scalar(db.select(Message).where(Message.direction == "out").order_by(Message.id.desc()))
    assert sent.delivery_status == "queued" and sent.bcc_addrs == "boss@example.com, help@acme.test"
    assert "Queued" in r.get_data(as_text=True)
    assert db.session.scalar(db.select(Draft)) is None


def test_a_changed_message_body_is_never_shown_from_the_display_cache(client, db, setup, htmx_headers):
    """The sanitised frames are cached by content: editing a stored message (or its sanitiser
    re-cleaning it) shows the new body at once, on the page and in the "Show images" fragment."""
    conv, first = setup["conv"], setup["messages"][0]
    first.html = '<p>Version one <img src="https://img.example/1.png"></p>'
    db.session.commit()
    page = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
    assert "Version one" in page and "img.example" not in page
    shown = client.get(f"/inbox/m/{first.id}/body?images=1", headers=htmx_headers).get_data(as_text=True)
    assert f'src="/inbox/m/{first.id}/frame"' in shown and "img.example" not in shown  # a frame of its own
    assert "img.example/1.png" in client.get(f"/inbox/m/{first.id}/frame").get_data(as_text=True)
    first.html = '<p>Version two <img src="https://img.example/2.png"></p>'
    db.session.commit()
    page = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
    assert "Version two" in page and "Version one" not in page
    shown = client.get(f"/inbox/m/{first.id}/frame").get_data(as_text=True)
    assert "img.example/2.png" in shown and "img.example/1.png" not in shown


def test_conversation_page_queries_do_not_grow_with_its_messages(client, db, setup):
    """Messages, their authors and attachments come in bulk: a longer thread costs no more queries."""
    conv = setup["conv"]
    make_message(conv, text="With a file", attachments=[("a.pdf", "application/pdf", b"%PDF-1")])
    client.get(f"/inbox/c/{conv.id}")  # the first view records that the agent has seen it

    def page():
        with CountQueries(db) as q:
            html = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
        return q.count, html

    before, _ = page()
    for i in range(15):
        make_message(conv, direction="out" if i % 2 else "in", author=setup["agent"] if i % 2 else None,
                     text=f"Message {i}", attachments=[(f"f{i}.txt", "text/plain", b"x")] if i % 3 == 0 else ())
    make_message(conv, direction="note", author=setup["agent"], text="A note", html="<p>A <b>note</b></p>")
    client.get(f"/inbox/c/{conv.id}")
    after, html = page()
    assert html.count('class="tile tile-') == 20 and "f12.txt" in html and "<b>note</b>" in html
    assert after == before


def test_arrival_card_earlier_conversations_flow_runs_and_drafts(client, db, setup, htmx_headers):
    from app.models.flows import FlowRun

    conv = setup["conv"]
    page = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
    assert "<dd>Carol Customer <span class=\"muted small\">carol@example.com</span></dd>" in page
    assert "<dd>help@mail.pigeonhole.test</dd>" in page and "<dd>Billing</dd>" in page
    assert "Flow actions" not in page and "Earlier conversations" not in page and "Intent" not in page
    assert "No drafts in this conversation." in page and 'since <time datetime=' in page and 'class="since">' in page  # the customer wrote last
    older = make_conversation(queue=setup["queue"], address=setup["address"], contact_email="carol@example.com",
                              subject="An older question", status="closed")
    make_conversation(queue=make_queue("Elsewhere"), address=setup["address"], contact_email="carol@example.com",
                      subject="Not for this agent")
    conv.intent, conv.intent_confidence = "delivery", 0.87
    db.session.add(FlowRun(conversation_id=conv.id, flow_name="Support flow", outcome="ran",
                           actions=[{"action": "route", "result": "queue Billing"}]))
    db.session.commit()
    headers = {**htmx_headers, "X-CSRFToken": setup["token"]}
    client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "reply"}, headers=headers)
    blank = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)  # a composer opened and left: not listed
    assert "Reply to carol@example.com" not in blank and "No drafts in this conversation." in blank
    draft = db.session.scalar(db.select(Draft).where(Draft.conversation_id == conv.id))
    client.post(f"/inbox/drafts/{draft.id}", data={"body": "<p>Dear Carol,</p>"}, headers=headers)
    page = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
    assert "Earlier conversations (1)" in page and "An older question" in page and f"/inbox/c/{older.id}" in page
    assert "Not for this agent" not in page
    assert "Flow actions (1)" in page and "<strong>Support flow</strong>" in page and "route: queue Billing" in page
    assert "<dd>delivery <span class=\"muted small\">87% sure</span></dd>" in page
    assert "Reply to carol@example.com" in page and "No drafts in this conversation." not in page


def test_tiles_show_every_change_at_once_though_their_html_is_cached(client, db, setup):
    conv, agent = setup["conv"], setup["agent"]
    answer = setup["messages"][1]

    def tile(message):
        html = client.get(f"/inbox/c/{conv.id}").get_data(as_text=True)
        return re.search(rf'<article [^>]*id="message-{message.id}".*?</article>', html, re.S).group(0)

    first = tile(answer)
    assert "Alex Agent" in first and "delivery-sent" in first and "<details class=\"tile-details\">" in first
    assert tile(answer) == first
    answer.delivery_status, answer.delivery_error = "failed", "550 5.1.1 No such user"
    agent.name = "Alex Renamed"
    db.session.commit()
    changed = tile(answer)
    assert "550 5.1.1 No such user" in changed and ">Retry</button>" in changed and "Alex Renamed" in changed
    last = make_message(conv, text="One more question")
    db.session.commit()
    assert '<details class="tile-details" open>' in tile(last)
    assert '<details class="tile-details" open>' not in tile(setup["messages"][2])  # no longer the newest

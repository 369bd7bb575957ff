"""Inbox routes through the test client: full page, HTMX fragment and 422 for each."""
from __future__ import annotations

import io
import re
import json
from datetime import datetime, timedelta, timezone

import pytest

from app.models.inbox import Draft, Message
from tests.factories import make_address, make_conversation, make_message, make_queue, make_response
from tests.helpers import CountQueries, csrf_token

NOW = datetime.now(timezone.utc)


@pytest.fixture
def ws(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    conv = make_conversation(queue=queue, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer", when=NOW - timedelta(hours=1))
    msg = make_message(conv, text="Hello there", html='<p>Hello <img src="https://t.example/x.gif"></p>'
                       '<blockquote>old stuff</blockquote>', when=NOW - timedelta(minutes=50),
                       attachments=[("report.html", "text/html", b"<script>alert(1)</script>")])
    token = csrf_token(client, "/inbox/")
    return {"agent": agent, "queue": queue, "address": address, "conv": conv, "msg": msg,
            "h": {"HX-Request": "true", "X-CSRFToken": token}, "token": token}


def test_inbox_page_fragment_and_422(client, ws):
    full = client.get("/inbox/?view=all")
    html = full.get_data(as_text=True)
    assert full.status_code == 200 and "<html" in html
    for label in ("Mine", "Unassigned", "All", "Drafts"):
        assert f">{label}</a>" in html  # counts arrive in their own request
    tabs = client.get("/inbox/counts?view=all&status=open", headers=ws["h"]).get_data(as_text=True)
    assert 'id="view-tabs"' in tabs and '>All <span class="count">1</span>' in tabs
    assert '>Mine <span class="count">0</span>' in tabs and "every 30s" in tabs and "load," not in tabs
    assert 'id="inbox-poller"' in html and "Hello there" in html
    frag = client.get("/inbox/?view=all&q=hello", headers=ws["h"]).get_data(as_text=True)
    assert "<html" not in frag and "Carol Customer" in frag and 'id="filter-q"' not in frag
    assert "No conversation matches" in client.get("/inbox/?view=all&q=zzzz", headers=ws["h"]).get_data(as_text=True)
    bad = client.get("/inbox/?view=all&status=nope", headers=ws["h"])
    assert bad.status_code == 422 and "Unknown status" in bad.get_data(as_text=True)
    assert client.get("/inbox/?view=all&cursor=x~y", headers=ws["h"]).status_code == 422


def test_search_box_says_what_it_searches_and_finds_a_prefix(client, ws):
    html = client.get("/inbox/?view=all").get_data(as_text=True)
    assert 'placeholder="Words, customer address or file name"' in html
    found = client.get("/inbox/?view=all&q=hel&status=", headers=ws["h"]).get_data(as_text=True)  # "Hello there"
    assert "Carol Customer" in found and "No conversation matches" not in found
    by_file = client.get("/inbox/?view=all&q=report.html&status=", headers=ws["h"]).get_data(as_text=True)
    assert "Carol Customer" in by_file


def test_inbox_page_costs_the_same_few_queries_for_any_number_of_rows(client, ws, db):
    """One statement for the rows with their snippets and markers, one for the queue filter, one for the
    assignee and address filters, and the signed-in user: no query per row (and none per marker) whatever
    the page holds."""
    def page_queries(url):
        with CountQueries(db) as q:
            html = client.get(url).get_data(as_text=True)
        return q.count, html

    one, _ = page_queries("/inbox/?view=all")
    for i in range(12):
        conv = make_conversation(queue=ws["queue"], address=ws["address"], subject=f"Row {i}",
                                 assignee=ws["agent"] if i % 2 else None)
        make_message(conv, text=f"Words of row {i}", delivery_status="failed" if i == 3 else None,
                     direction="out" if i == 3 else "in")
    write_a_reply(client, conv, ws["h"])
    many, html = page_queries("/inbox/?view=all")
    assert html.count('class="conv-row') == 13 and "Words of row 7" in html and "Not delivered" in html
    assert 'marker-draft' in html and "Alex Agent" in html and "Unassigned" in html
    assert many == one <= 3  # the signed-in user, the page, the filters' choices
    search, html = page_queries("/inbox/?view=all&status=&q=row")
    # On PostgreSQL a search asks first whether any attachment's file name matches (most do not: its window is
    # then the text's matches alone, half the work of merging them with an empty member): one statement more.
    # On SQLite the file names are words of the conversations' documents: none more.
    extra = 0 if db.engine.dialect.name == "sqlite" else 1
    assert html.count('class="conv-row') == 12 and search == one + extra


def test_load_more_and_polling(client, ws, app):
    app.config["INBOX_PAGE_SIZE"] = 1
    make_conversation(queue=ws["queue"], address=ws["address"], subject="Second", when=NOW - timedelta(hours=2))
    first = client.get("/inbox/?view=all").get_data(as_text=True)
    assert "Load more" in first and "Second" not in first
    import re

    more_url = re.search(r'hx-get="(/inbox/\?[^"]*cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    more = client.get(more_url, headers=ws["h"]).get_data(as_text=True)
    assert "Second" in more and "<table" not in more
    poll_url = re.search(r'id="inbox-poller"[^>]*hx-get="([^"]+)"', first, re.S).group(1).replace("&amp;", "&")
    quiet = client.get(poll_url, headers=ws["h"]).get_data(as_text=True)
    assert "conv-row" not in quiet and 'hx-swap-oob="true"' in quiet
    make_conversation(queue=ws["queue"], address=ws["address"], subject="Just arrived", when=NOW)
    news = client.get(poll_url, headers=ws["h"]).get_data(as_text=True)
    assert "Just arrived" in news and "fresh" in news and 'id="inbox-poller"' in news


def test_search_older_messages_walks_the_older_windows(client, ws, monkeypatch):
    from app.inbox import search

    monkeypatch.setattr(search, "MAX_MATCHES", 2)
    convs = [make_conversation(queue=ws["queue"], address=ws["address"], subject=f"Thread {i}",
                               when=NOW - timedelta(minutes=40 - i)) for i in range(3)]
    oldest = [make_message(conv, text=f"A squeaky hinge in {conv.subject}") for conv in convs][0]
    first = client.get("/inbox/?view=all&status=&q=squeaky").get_data(as_text=True)
    assert "Thread 2" in first and "Thread 1" in first and "Thread 0" not in first  # the newest two matches
    assert "Search older messages" in first and 'id="inbox-poller"' in first
    older_url = re.search(r'hx-get="(/inbox/\?[^"]*before=[^"]+)"', first).group(1).replace("&amp;", "&")
    older = client.get(older_url, headers=ws["h"]).get_data(as_text=True)
    assert "Thread 0" in older and "Thread 2" not in older and "<table" not in older
    assert "Search older messages" not in older and "inbox-poller" not in older  # one match left: the end
    full = client.get(older_url).get_data(as_text=True)  # without JavaScript: a page of its own
    assert "<html" in full and "Thread 0" in full and 'id="inbox-poller"' not in full
    empty = client.get(f"/inbox/?view=all&status=&q=squeaky&before={oldest.id}", headers=ws["h"]).get_data(as_text=True)
    assert "conv-row" not in empty and "No older conversation matches" in empty
    assert client.get("/inbox/?view=all&status=&q=squeaky&before=junk", headers=ws["h"]).status_code == 200
    for junk in ("!!!", "*", "@"):  # no word in it: nothing matches, no window, no error
        page = client.get(f"/inbox/?view=all&status=&q={junk}&before=5", headers=ws["h"])
        assert page.status_code == 200 and "Search older messages" not in page.get_data(as_text=True)


def write_a_reply(client, conv, headers) -> Draft:
    """Open Reply and write in it (a composer opened and left is not a draft)."""
    client.post(f"/inbox/c/{conv.id}/compose", data={"kind": "reply"}, headers=headers)
    draft = Draft.query.filter_by(conversation_id=conv.id).order_by(Draft.id.desc()).first()
    client.post(f"/inbox/drafts/{draft.id}", data={"body": "<p>Dear Carol,</p>"}, headers=headers)
    return draft


def test_drafts_view(client, ws, db):
    client.post(f"/inbox/c/{ws['conv'].id}/compose", data={"kind": "reply"}, headers=ws["h"])
    assert "Reply · Carol Customer" not in client.get("/inbox/drafts/").get_data(as_text=True)  # nothing written
    write_a_reply(client, ws["conv"], ws["h"])
    full = client.get("/inbox/drafts/").get_data(as_text=True)
    assert "<html" in full and "Reply · Carol Customer" in full
    frag = client.get("/inbox/drafts/", headers=ws["h"]).get_data(as_text=True)
    assert "<html" not in frag and "Reply · Carol Customer" in frag
    assert client.get("/inbox/?view=drafts").status_code == 302


def test_actions_fragment_full_and_422(client, ws, db):
    cid, h = ws["conv"].id, ws["h"]
    r = client.post(f"/inbox/c/{cid}/status", data={"status": "pending"}, headers=h)
    assert r.status_code == 200 and 'class="current-status">pending<' in r.get_data(as_text=True)
    assert client.post(f"/inbox/c/{cid}/status", data={"status": "gone"}, headers=h).status_code == 422
    r = client.post(f"/inbox/c/{cid}/status", data={"status": "open", "csrf_token": ws["token"]})
    assert r.status_code == 302
    r = client.post(f"/inbox/c/{cid}/assign", data={"assignee": "me"}, headers=h)
    assert "Assignee: <strong>Alex Agent</strong>" in r.get_data(as_text=True)
    assert client.post(f"/inbox/c/{cid}/assign", data={"assignee": "abc"}, headers=h).status_code == 422
    assert client.post(f"/inbox/c/{cid}/transfer", data={"queue": "999"}, headers=h).status_code == 422
    other = make_queue("Elsewhere")
    moved = client.post(f"/inbox/c/{cid}/transfer", data={"queue": str(other.id)}, headers=h)
    # Handed to a queue the agent does not work (and so unassigned): back to the inbox.
    assert moved.status_code == 204 and moved.headers["HX-Redirect"] == "/inbox/"
    assert client.get(f"/inbox/c/{cid}").status_code == 404


def test_action_lists_show_the_conversations_current_state(client, ws, db):
    cid, h, agent = ws["conv"].id, ws["h"], ws["agent"]
    page = client.get(f"/inbox/c/{cid}").get_data(as_text=True)
    assert '<select id="assignee" name="assignee" required><option selected value="">Unassigned</option>' in page
    assert f'<option selected value="{ws["queue"].id}">Support</option>' in page
    assert '<option selected value="open">Open</option><option value="pending">Pending</option>' in page
    # After "Assign to me" the list shows the agent (it used to show the posted "me": nothing selected).
    r = client.post(f"/inbox/c/{cid}/assign", data={"assignee": "me"}, headers=h).get_data(as_text=True)
    assert f'<option selected value="{agent.id}">Alex Agent</option>' in r and "Assign to me</button>" in r
    r = client.post(f"/inbox/c/{cid}/status", data={"status": "pending"}, headers=h).get_data(as_text=True)
    assert '<option selected value="pending">Pending</option>' in r


def test_notes_fragment_and_422(client, ws, db):
    cid, h = ws["conv"].id, ws["h"]
    bad = client.post(f"/inbox/c/{cid}/notes", data={"body": "  "}, headers=h)
    assert bad.status_code == 422 and "Write the note first." in bad.get_data(as_text=True)
    ok = client.post(f"/inbox/c/{cid}/notes", data={"body": "Called her"}, headers=h)
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200 and 'hx-swap-oob="beforeend:#thread"' in body and "tile-note" in body
    assert db.session.scalar(db.select(Message).where(Message.direction == "note")).text == "Called her"


def test_message_body_images_quote_status_and_updates(client, ws, db):
    mid, cid, h = ws["msg"].id, ws["conv"].id, ws["h"]
    page = client.get(f"/inbox/c/{cid}").get_data(as_text=True)
    assert "Show images" in page and "t.example" not in page
    shown = client.get(f"/inbox/m/{mid}/body?images=1", headers=h).get_data(as_text=True)
    assert f'src="/inbox/m/{mid}/frame"' in shown and "Show images" not in shown
    frame = client.get(f"/inbox/m/{mid}/frame")
    assert frame.status_code == 200 and "t.example/x.gif" in frame.get_data(as_text=True)
    csp = frame.headers["Content-Security-Policy"]
    assert "img-src data: http: https:" in csp and "frame-ancestors 'self'" in csp and "sandbox" in csp
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    # The page itself loads no remote image.
    assert "http:" not in client.get(f"/inbox/c/{cid}").headers["Content-Security-Policy"]
    quote = client.get(f"/inbox/m/{mid}/quote", headers=h).get_data(as_text=True)
    assert "old stuff" in quote and "<iframe" in quote
    assert client.get(f"/inbox/c/{cid}/updates", headers=h).status_code == 422
    assert "tile" not in client.get(f"/inbox/c/{cid}/updates?after={mid}", headers=h).get_data(as_text=True)
    newer = make_message(ws["conv"], text="One more thing")
    news = client.get(f"/inbox/c/{cid}/updates?after={mid}", headers=h).get_data(as_text=True)
    assert f'id="message-{newer.id}"' in news and f"after={newer.id}" in news
    failed = make_message(ws["conv"], direction="out", delivery_status="failed", delivery_error="550 5.1.1 No such user")
    status = client.get(f"/inbox/m/{failed.id}/status", headers=h).get_data(as_text=True)
    assert "550 5.1.1 No such user" in status and ">Retry<" in status
    # A message with no rendered copy (made here without the outbound path) is refused, its words kept;
    # tests/web/test_delivery.py retries real ones.
    retried = client.post(f"/inbox/m/{failed.id}/retry", headers=h)
    text = retried.get_data(as_text=True)
    assert retried.status_code == 422 and "rendered copy is missing" in text and "550 5.1.1 No such user" in text
    sent = make_message(ws["conv"], direction="out", delivery_status="sent")
    again = client.post(f"/inbox/m/{sent.id}/retry", headers=h)
    assert again.status_code == 422 and "Only a message that failed can be sent again." in again.get_data(as_text=True)


def test_attachment_download_headers_and_permission(client, ws, db, login_as):
    att = ws["msg"].attachments[0]
    r = client.get(f"/inbox/attachments/{att.id}")
    assert r.status_code == 200 and r.data == b"<script>alert(1)</script>"
    assert r.headers["Content-Disposition"].startswith("attachment;") and "report.html" in r.headers["Content-Disposition"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r.headers["Content-Security-Policy"]
    secret = make_conversation(queue=make_queue("Secret"), address=ws["address"])
    hidden = make_message(secret, attachments=[("x.pdf", "application/pdf", b"%PDF")]).attachments[0]
    assert client.get(f"/inbox/attachments/{hidden.id}").status_code == 404
    assert client.get("/inbox/attachments/99999").status_code == 404


def test_presence_lists_the_others(client, ws, app):
    from app.inbox import presence

    with app.app_context():
        presence.touch(ws["conv"].id, 4242, "Sam Supervisor", replying=True)
    r = client.post(f"/inbox/c/{ws['conv'].id}/presence", data={"replying": "1"}, headers=ws["h"])
    assert "Sam Supervisor is replying" in r.get_data(as_text=True)
    assert "Sam Supervisor replying" in client.get("/inbox/?view=all").get_data(as_text=True)  # on the inbox row too
    assert client.post(f"/inbox/c/{ws['conv'].id}/presence", data={"leaving": "1"}, headers=ws["h"]).status_code == 204


def test_composer_routes(client, ws, db, app):
    cid, h = ws["conv"].id, ws["h"]
    assert client.post(f"/inbox/c/{cid}/compose", data={"kind": "yell"}, headers=h).status_code == 422
    full = client.post(f"/inbox/c/{cid}/compose", data={"kind": "forward", "csrf_token": ws["token"]})
    assert full.status_code == 302 and "draft=" in full.headers["Location"]
    draft = db.session.scalar(db.select(Draft))
    page = client.get(full.headers["Location"]).get_data(as_text=True)
    assert f'id="composer-{draft.id}"' in page and "Fwd: Where is my parcel?" in page
    assert 'name="forward" value=' in page  # the earlier attachment is offered with a checkbox
    frag = client.get(f"/inbox/drafts/{draft.id}", headers=h).get_data(as_text=True)
    assert frag.lstrip().startswith("<section") and "<html" not in frag

    bad = client.post(f"/inbox/drafts/{draft.id}/send", data={"to": "nobody", "subject": "", "body": ""}, headers=h)
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "“nobody” is not a valid email address." in text and "Write a subject." in text

    app.config["COMPOSER_MAX_ATTACHMENT_BYTES"] = 5
    up = client.post(f"/inbox/drafts/{draft.id}/attachments", headers=h,
                     data={"file": (io.BytesIO(b"0123456789"), "big.bin")}, content_type="multipart/form-data")
    assert up.status_code == 422 and "larger than 5 bytes" in up.get_data(as_text=True)
    assert client.post(f"/inbox/drafts/{draft.id}/attachments", headers=h, data={}).status_code == 422
    ok = client.post(f"/inbox/drafts/{draft.id}/attachments", headers=h,
                     data={"file": (io.BytesIO(b"123"), "small.txt")}, content_type="multipart/form-data")
    assert ok.status_code == 200 and "small.txt" in ok.get_data(as_text=True)
    removed = client.post(f"/inbox/drafts/{draft.id}/attachments/1/remove", headers=h)
    assert "small.txt" not in removed.get_data(as_text=True)
    assert client.post(f"/inbox/drafts/{draft.id}/attachments/9/remove", headers=h).status_code == 422

    closed = client.post(f"/inbox/drafts/{draft.id}", data={"close": "1", "to": "x@example.com", "body": "<p>FYI</p>"}, headers=h)
    assert "Forward to x@example.com" in closed.get_data(as_text=True)
    dialog = client.get(f"/inbox/drafts/{draft.id}/delete", headers=h).get_data(as_text=True)
    assert "<dialog" in dialog and "Delete this draft?" in dialog
    gone = client.post(f"/inbox/drafts/{draft.id}/delete", headers=h)
    assert gone.status_code == 204 and gone.headers["HX-Redirect"] == f"/inbox/c/{cid}"


def test_closing_an_untouched_draft_discards_it(client, ws, db):
    client.post(f"/inbox/c/{ws['conv'].id}/compose", data={"kind": "reply"}, headers=ws["h"])
    draft = db.session.scalar(db.select(Draft))
    r = client.post(f"/inbox/drafts/{draft.id}", data={"close": "1", "body": "<p><br></p>"}, headers=ws["h"])
    assert "No drafts in this conversation." in r.get_data(as_text=True)


def test_send_over_newer_message_warns_then_sends(client, ws, db):
    h = ws["h"]
    client.post(f"/inbox/c/{ws['conv'].id}/compose", data={"kind": "reply"}, headers=h)
    draft = db.session.scalar(db.select(Draft))
    make_message(ws["conv"], text="Oh and another thing")
    data = {"to": "carol@example.com", "subject": "Re: x", "body": "<p>Done</p>"}
    warned = client.post(f"/inbox/drafts/{draft.id}/send", data=data, headers=h)
    assert warned.status_code == 422 and "A newer message is in this conversation" in warned.get_data(as_text=True)
    sent = client.post(f"/inbox/drafts/{draft.id}/send", data={**data, "confirm_newer": "1"}, headers=h)
    assert sent.status_code == 200 and "tile-out" in sent.get_data(as_text=True)


def test_new_mail_page_and_send(client, ws, db):
    r = client.post("/inbox/new", headers=ws["h"])
    assert r.status_code == 204
    page = client.get(r.headers["HX-Redirect"]).get_data(as_text=True)
    assert "<h1>New Mail</h1>" in page and 'name="queue_id"' in page
    draft = db.session.scalar(db.select(Draft))
    sent = client.post(f"/inbox/drafts/{draft.id}/send", headers=ws["h"], data={
        "from_address_id": ws["address"].id, "queue_id": ws["queue"].id, "to": "new@example.com",
        "subject": "Hello", "body": "<p>Welcome</p>"})
    assert sent.status_code == 204 and sent.headers["HX-Redirect"].startswith("/inbox/c/")


def test_recipient_check_suggestions_picker_and_insert(client, ws, db):
    h = ws["h"]
    bad = client.post("/inbox/recipients/check", data={"field": "cc", "cc": "a@b.example, nope"}, headers=h)
    assert bad.status_code == 422 and "“nope” is not a valid email address." in bad.get_data(as_text=True)
    good = client.post("/inbox/recipients/check", data={"field": "cc", "cc": "a@b.example"}, headers=h)
    assert good.status_code == 200 and good.get_data(as_text=True).strip() == ""
    assert client.post("/inbox/recipients/check", data={"field": "from"}, headers=h).status_code == 422
    suggestions = client.get("/inbox/contacts/suggest?field=to&to=x@y.example, car", headers=h).get_data(as_text=True)
    assert "Carol Customer &lt;carol@example.com&gt;" in suggestions
    assert 'role="option"' in suggestions and 'id="to-option-0-1"' in suggestions and 'aria-selected="false"' in suggestions
    assert "Carol" in client.get("/inbox/contacts/suggest?field=to&to=x@y.example; car", headers=h).get_data(as_text=True)
    assert client.get("/inbox/contacts/suggest?field=zz&q=car", headers=h).status_code == 422

    client.post(f"/inbox/c/{ws['conv'].id}/compose", data={"kind": "reply"}, headers=h)
    draft = db.session.scalar(db.select(Draft))
    make_response(title="Greeting", subject="Hi {{customer.first_name}}", body="Hello {{customer.first_name}}!")
    hidden = make_response(title="Secret", visible_to_all=False, queue_ids=[make_queue("Other").id])
    picker = client.get(f"/inbox/responses/picker?draft={draft.id}", headers=h).get_data(as_text=True)
    assert "<dialog" in picker and "Greeting" in picker and "Replace with subject" in picker and "Secret" not in picker
    results = client.get(f"/inbox/responses/picker?draft={draft.id}&results=1&q=zzz", headers=h).get_data(as_text=True)
    assert "<dialog" not in results and "No Standard Responses match" in results
    greeting = db.session.scalar(db.select(type(hidden)).where(type(hidden).title == "Greeting"))
    data = json.loads(client.get(f"/inbox/responses/{greeting.id}/insert?draft={draft.id}").data)
    assert data == {"subject": "Hi Carol", "html": "<p>Hello Carol!</p>", "title": "Greeting"}
    assert client.get(f"/inbox/responses/{hidden.id}/insert?draft={draft.id}").status_code == 404


def test_rows_show_every_change_at_once_though_their_html_is_cached(client, ws, db, app):
    conv, h = ws["conv"], ws["h"]

    def row():
        html = client.get("/inbox/?view=all").get_data(as_text=True)
        return re.search(rf'<tr id="conv-{conv.id}".*?</tr>', html, re.S).group(0)

    first = row()
    assert "marker-unread" in first and "Carol Customer" in first and "Draft" not in first
    assert row() == first  # the same data: the same HTML (from the cache)
    client.get(f"/inbox/c/{conv.id}")  # read
    assert "marker-unread" not in row()
    write_a_reply(client, conv, h)
    assert "You have a draft here" in row()
    conv.contact.name = "Carol Renamed"
    db.session.commit()
    assert "Carol Renamed" in row()
    from app.inbox import presence

    with app.app_context():
        presence.touch(conv.id, 4242, "Sam Supervisor", replying=False)
    assert "Sam Supervisor viewing" in row()
    make_message(conv, text="Newer words from Carol")
    conv.last_message_at = datetime.now(timezone.utc)
    db.session.commit()
    newest = row()
    assert "Newer words from Carol" in newest and "marker-unread" in newest


def test_agents_land_on_mine_as_their_profile_says(client, ws, db):
    """`/inbox/` opens the view of the user's start page: "Mine" for a new agent, All when they choose it."""
    agent, conv = ws["agent"], ws["conv"]
    assert agent.landing_view == "inbox_mine"
    landing = client.get("/inbox/").get_data(as_text=True)
    mine_tab = re.search(r'<a href="[^"]*view=mine[^"]*"[^>]*>', landing).group(0)
    assert 'aria-current="page"' in mine_tab and f'id="conv-{conv.id}"' not in landing  # Carol's is unassigned
    assert f'id="conv-{conv.id}"' in client.get("/inbox/?view=all").get_data(as_text=True)
    assert client.get("/").headers["Location"].endswith("/inbox/?view=mine")
    agent.landing_view = "inbox"
    db.session.commit()
    assert f'id="conv-{conv.id}"' in client.get("/inbox/").get_data(as_text=True)
    from tests.factories import make_user

    assert make_user("supervisor").landing_view == "inbox" and make_user("agent").landing_view == "inbox_mine"


def test_queue_filter_lists_the_agents_queues_and_a_supervisor_every_queue(client, ws, db, login_as):
    """The Queue filter's choices come in the one statement of the filters' choices: an agent's own queues by
    name, a supervisor's every queue."""
    make_queue("Billing", members=[ws["agent"]])
    make_queue("Secret")

    def queue_options():
        html = client.get("/inbox/?view=all").get_data(as_text=True)
        select = re.search(r'<select id="filter-queue".*?</select>', html, re.S).group(0)
        return re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', select)

    options = queue_options()
    assert [name for _, name in options] == ["Billing", "Support"]
    assert ("%d" % ws["queue"].id, "Support") in options
    client.post("/logout", data={"csrf_token": ws["token"]})
    login_as("supervisor", name="Sam Supervisor")
    assert [name for _, name in queue_options()] == ["Billing", "Secret", "Support"]

"""The contact panel and page, internal notes (edit, delete, links, line breaks, XSS) and @mentions
with their notifications, through the test client."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.inbox.contacts import domain_organization
from app.models.inbox import Contact, Message
from app.models.notifications import Notification
from app.models.organize import ConversationEvent
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token


def sign_in(client, user) -> dict:
    """Sign the client in as `user` (signing out whoever was in); the HTMX headers with its CSRF token."""
    page = client.get("/inbox/")
    if page.status_code == 200:
        client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    r = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert r.status_code == 302
    return {"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/inbox/")}


@pytest.fixture
def team(client, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Buddy")
    olga = make_user("agent", email="olga@example.test", name="Olga Outside")  # not in the queue
    sam = make_user("supervisor", email="sam@example.test", name="Sam Super")
    ada = make_user("admin", email="ada@example.test", name="Ada Admin")
    support, billing = make_queue("Support", members=[alex, bea]), make_queue("Billing", members=[olga])
    address = make_address("help@mail.pigeonhole.test", queues=[support, billing])
    conv = make_conversation(queue=support, address=address, contact_email="carol@acme.example",
                             contact_name="Carol Customer", subject="Parcel late")
    make_message(conv, text="Where is it?")
    seen = make_conversation(queue=support, address=address, contact_email="carol@acme.example",
                             subject="Old refund", status="resolved")
    hidden = make_conversation(queue=billing, address=address, contact_email="carol@acme.example",
                               subject="Secret invoice")
    return {"alex": alex, "bea": bea, "olga": olga, "sam": sam, "ada": ada, "conv": conv, "seen": seen,
            "hidden": hidden, "contact": db.session.get(Contact, conv.contact_id)}


def _panel(html: str) -> str:
    start = html.index('id="contact-panel"')
    return html[start:html.index("</section>", start)]


def test_panel_lists_only_the_other_conversations_the_agent_may_see(client, team):
    sign_in(client, team["alex"])
    panel = _panel(client.get(f"/inbox/c/{team['conv'].id}").get_data(as_text=True))
    assert "Carol Customer" in panel and "carol@acme.example" in panel and "acme.example" in panel
    assert "Old refund" in panel and "status-resolved" in panel
    assert "Secret invoice" not in panel and "Parcel late" not in panel
    assert "View Contact" in panel  # agents read, supervisors and admins edit
    sign_in(client, team["sam"])
    panel = _panel(client.get(f"/inbox/c/{team['conv'].id}").get_data(as_text=True))
    assert "Secret invoice" in panel and "Edit Contact" in panel


def test_free_mail_names_no_organisation_and_the_override_wins(client, db, team):
    assert domain_organization("someone@gmail.com") == "" and domain_organization("x@Outlook.com") == ""
    assert domain_organization("x@acme.example") == "acme.example"
    h = sign_in(client, team["sam"])
    url = f"/inbox/contacts/{team['contact'].id}"
    r = client.post(url, data={"name": "Carol C.", "extra": "carol@gmail.com\nnot an address", "organization": "Acme",
                               "notes": "VIP", "csrf_token": h["X-CSRFToken"]})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "not an address" in html and "VIP" in html  # nothing lost
    assert db.session.get(Contact, team["contact"].id).name == "Carol Customer"
    r = client.post(url, data={"name": "Carol C.", "extra": "carol@gmail.com", "organization": "Acme Ltd",
                               "notes": "VIP <b>customer</b>", "csrf_token": h["X-CSRFToken"]})
    assert r.status_code == 303
    panel = _panel(client.get(f"/inbox/c/{team['conv'].id}").get_data(as_text=True))
    assert "Acme Ltd" in panel and "carol@gmail.com" in panel and "VIP &lt;b&gt;customer&lt;/b&gt;" in panel


def test_agents_cannot_edit_a_contact_and_outsiders_cannot_see_it(client, db, team):
    h = sign_in(client, team["alex"])
    url = f"/inbox/contacts/{team['contact'].id}"
    page = client.get(url).get_data(as_text=True)
    assert "Old refund" in page and "Secret invoice" not in page and 'id="contact-name"' not in page
    r = client.post(url, data={"name": "Hacked", "extra": "", "organization": "", "notes": "",
                               "csrf_token": h["X-CSRFToken"]})
    assert r.status_code == 403 and db.session.get(Contact, team["contact"].id).name == "Carol Customer"
    other = make_conversation(queue=make_queue("Elsewhere"), contact_email="dan@example.org")
    assert client.get(f"/inbox/contacts/{other.contact_id}").status_code == 404


def _add_note(client, h, conv_id, body):
    return client.post(f"/inbox/c/{conv_id}/notes", data={"body": body}, headers=h)


def test_note_keeps_line_breaks_makes_safe_links_and_escapes_html(client, db, team):
    h = sign_in(client, team["alex"])
    body = ("First line\nsecond line https://example.com/a?b=1, mail mailto:x@example.com\n"
            "javascript:alert(1) <script>alert(2)</script><img src=x onerror=alert(3)>")
    r = _add_note(client, h, team["conv"].id, body)
    assert r.status_code == 200
    note = db.session.scalars(select(Message).where(Message.direction == "note")).one()
    page = client.get(f"/inbox/c/{team['conv'].id}").get_data(as_text=True)
    tile = page[page.index(f'id="message-{note.id}"'):]
    tile = tile[:tile.index("</article>")]
    assert "First line<br>second line" in tile
    assert '<a href="https://example.com/a?b=1" rel="noopener noreferrer">https://example.com/a?b=1</a>,' in tile
    assert '<a href="mailto:x@example.com" rel="noopener noreferrer">' in tile
    assert "<script" not in tile and "<img" not in tile and "onerror=" not in tile.replace("onerror=alert(3)&gt;", "")
    assert "&lt;script&gt;" in tile and 'href="javascript' not in tile


def test_only_the_author_edits_and_admins_may_delete_any_note(client, db, team):
    h = sign_in(client, team["alex"])
    _add_note(client, h, team["conv"].id, "Called her")
    note = db.session.scalars(select(Message).where(Message.direction == "note")).one()
    form = client.get(f"/inbox/notes/{note.id}/edit", headers=h)
    assert form.status_code == 200 and "Called her" in form.get_data(as_text=True)
    r = client.post(f"/inbox/notes/{note.id}/edit", data={"body": "Called her twice\nNo answer"}, headers=h)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Called her twice<br>No answer" in html and "Edited" in html
    assert client.post(f"/inbox/notes/{note.id}/edit", data={"body": "  "}, headers=h).status_code == 422
    db.session.expire_all()
    assert db.session.get(Message, note.id).edited_at is not None
    h = sign_in(client, team["bea"])  # a colleague who sees the conversation
    assert client.get(f"/inbox/notes/{note.id}/edit", headers=h).status_code == 403
    assert client.post(f"/inbox/notes/{note.id}/edit", data={"body": "mine now"}, headers=h).status_code == 403
    assert client.post(f"/inbox/notes/{note.id}/delete", headers=h).status_code == 403
    h = sign_in(client, team["olga"])  # may not see it at all
    assert client.post(f"/inbox/notes/{note.id}/delete", headers=h).status_code == 404
    h = sign_in(client, team["ada"])
    assert client.post(f"/inbox/notes/{note.id}/edit", data={"body": "x"}, headers=h).status_code == 403
    note_id = note.id
    r = client.post(f"/inbox/notes/{note_id}/delete", headers=h)
    assert r.status_code == 200 and "deleted an internal note by Alex Agent" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, note_id) is None
    lines = [e.text for e in db.session.scalars(select(ConversationEvent).where(ConversationEvent.kind == "note"))]
    assert lines == ["Alex Agent edited an internal note", "Ada Admin deleted an internal note by Alex Agent"]


def test_mention_notifies_only_colleagues_who_may_see_the_conversation(client, db, team):
    h = sign_in(client, team["alex"])
    found = client.get(f"/inbox/c/{team['conv'].id}/mentions?q=b", headers=h).get_json()
    assert found == [{"handle": "bea", "name": "Bea Buddy"}]
    handles = {u["handle"] for u in client.get(f"/inbox/c/{team['conv'].id}/mentions", headers=h).get_json()}
    assert handles == {"bea", "sam", "ada"}  # not Olga (another queue), not Alex himself
    _add_note(client, h, team["conv"].id, "@bea and @olga and @sam please look, @alex too, and @nobody")
    got = {n.user_id for n in db.session.scalars(select(Notification))}
    assert got == {team["bea"].id, team["sam"].id}
    note = db.session.scalars(select(Message).where(Message.direction == "note")).one()
    assert '<strong class="mention"' in note.html and "@olga" in note.html and 'title="Olga' not in note.html
    # An edit notifies the newly mentioned only.
    client.post(f"/inbox/notes/{note.id}/edit", data={"body": "@bea @sam @ada"}, headers=h)
    assert sorted(n.user_id for n in db.session.scalars(select(Notification))) == sorted(
        [team["bea"].id, team["sam"].id, team["ada"].id])

    h = sign_in(client, team["bea"])
    badge = client.get("/notifications/badge", headers=h).get_data(as_text=True)
    assert 'class="badge notification-count"' in badge and ">1<" in badge
    page = client.get("/notifications").get_data(as_text=True)
    assert "Alex Agent mentioned you in “Parcel late”" in page and "Mark as read" in page
    mine = db.session.scalars(select(Notification).where(Notification.user_id == team["bea"].id)).one()
    r = client.get(f"/notifications/{mine.id}")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/inbox/c/{team['conv'].id}#message-{note.id}")
    assert "notification-count" not in client.get("/notifications/badge", headers=h).get_data(as_text=True)
    h = sign_in(client, team["olga"])
    assert "mentioned you" not in client.get("/notifications").get_data(as_text=True)
    assert client.get(f"/notifications/{mine.id}").status_code == 404
    assert client.get(f"/inbox/c/{team['conv'].id}/mentions", headers=h).status_code == 404


def test_mark_all_read(client, db, team):
    h = sign_in(client, team["alex"])
    _add_note(client, h, team["conv"].id, "@sam")
    sign_in(client, team["sam"])
    r = client.post("/notifications/read", data={"csrf_token": csrf_token(client, "/notifications")})
    assert r.status_code == 303
    assert db.session.scalars(select(Notification)).one().read_at is not None
    page = client.get("/notifications").get_data(as_text=True)
    assert "mentioned you" in page and "Mark as read" not in page and "Mark all as read" not in page
